#include "faults/process/readiness.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "faults/core/errors.h"
#include "faults/process/spawn.h"
#include "faults/sys/netns.h"
#include "faults/sys/unique_fd.h"

namespace faultline::faults::process {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Sockets belong to the network namespace of the thread that created them: the socket is made
// on a thread inside `netns`, so the caller's own namespace is untouched.
sys::UniqueFd SocketIn(const std::string& netns, int domain) {
  auto make = [domain] {
    return sys::UniqueFd(::socket(domain, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  };
  if (netns.empty()) return make();
  sys::UniqueFd fd;
  try {
    sys::NetNs::RunIn(netns, [&] { fd = make(); });
  } catch (const std::exception&) {
    return {};  // a namespace that went away: the probe fails, as a refused connect would
  }
  return fd;
}

bool Resolve(const std::string& host, int port, sockaddr_storage* addr, socklen_t* len) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string h = host == "localhost" ? "127.0.0.1" : host;
  if (::getaddrinfo(h.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res) {
    return false;
  }
  memcpy(addr, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return true;
}

// Connects within `limit`; returns the connected socket or an empty fd.
sys::UniqueFd ConnectIn(const std::string& netns, const std::string& host, int port,
                        milliseconds limit) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!Resolve(host, port, &addr, &len)) return {};
  sys::UniqueFd fd = SocketIn(netns, addr.ss_family);
  if (!fd) return {};
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    if (errno != EINPROGRESS) return {};
    pollfd p{fd.get(), POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) != 1) return {};
    int err = 0;
    socklen_t elen = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err != 0) return {};
  }
  return fd;
}

bool HttpGet2xx(const ReadinessProbe& probe, const std::string& netns, milliseconds limit) {
  auto deadline = Clock::now() + limit;
  sys::UniqueFd fd = ConnectIn(netns, probe.host, probe.port, limit);
  if (!fd) return false;
  std::string req = "GET " + probe.path + " HTTP/1.0\r\nHost: " + probe.host + "\r\n" +
                    "User-Agent: faultline-probe\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  std::string resp;
  char buf[512];
  while (Clock::now() < deadline) {
    short events = sent < req.size() ? POLLOUT : POLLIN;
    pollfd p{fd.get(), events, 0};
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (::poll(&p, 1, static_cast<int>(std::max<long>(left, 1))) != 1) return false;
    if (sent < req.size()) {
      ssize_t n = ::send(fd.get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += n;
      continue;
    }
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    resp.append(buf, n);
    if (resp.find("\r\n") != std::string::npos) break;
  }
  // "HTTP/1.1 200 OK": the status code's first digit is at index 9.
  auto eol = resp.find("\r\n");
  if (eol == std::string::npos) return false;
  std::string line = resp.substr(0, eol) + " ";
  return line.size() > 13 && line.compare(0, 5, "HTTP/") == 0 && line[9] == '2';
}

bool RunCommandProbe(const ReadinessProbe& probe, const std::string& netns, milliseconds limit) {
  ExecPlan plan;
  try {
    plan = MakePlan(probe.command, {}, "/", netns, "", "readiness command");
  } catch (const std::exception&) {
    return false;
  }
  pid_t pid;
  try {
    pid = Spawn(plan, "readiness command");
  } catch (const FaultError&) {
    return false;
  }
  auto deadline = Clock::now() + limit;
  int st = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (r < 0) return false;
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);  // our own child, not yet reaped: the pid cannot have been reused
      ::waitpid(pid, nullptr, 0);
      return false;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}

milliseconds AttemptLimit(const ReadinessProbe& probe) {
  auto l = std::chrono::duration_cast<milliseconds>(probe.timeout);
  return std::clamp(l, milliseconds(50), milliseconds(2000));
}

}  // namespace

bool ProbeOnce(const ReadinessProbe& probe, const std::string& netns) {
  milliseconds limit = AttemptLimit(probe);
  switch (probe.kind) {
    case ReadinessProbe::Kind::kTcp:
      return static_cast<bool>(ConnectIn(netns, probe.host, probe.port, limit));
    case ReadinessProbe::Kind::kHttp:
      return HttpGet2xx(probe, netns, limit);
    case ReadinessProbe::Kind::kCommand:
      return RunCommandProbe(probe, netns, limit);
    case ReadinessProbe::Kind::kNone:
      return true;
  }
  return false;
}

}  // namespace faultline::faults::process
