#include "faults/process/managed.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "faults/core/duration.h"
#include "faults/core/errors.h"
#include "faults/process/output_excerpt.h"
#include "faults/process/proc.h"
#include "faults/syscall/interceptor.h"
#include "faults/syscall/launch.h"

extern char** environ;

namespace faultline::faults::process {
namespace {

// glibc 2.36 declares these in <sys/pidfd.h> without C linkage, so C++ cannot link them; the
// system calls themselves are stable.
int pidfd_open(pid_t pid, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}
int pidfd_send_signal(int pidfd, int sig, siginfo_t* info, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags));
}

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// ---- config parsing ------------------------------------------------------------------------

class Fields {
 public:
  FieldErrors errors;
  void Add(const std::string& field, const std::string& reason) {
    errors.push_back({field, reason});
  }
};

bool ParseHostPort(const std::string& text, std::string* host, int* port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return false;
  std::string h = text.substr(0, colon);
  if (h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::string p = text.substr(colon + 1);
  if (p.size() > 5 || !std::all_of(p.begin(), p.end(), ::isdigit)) return false;
  int v = std::stoi(p);
  if (v < 1 || v > 65535) return false;
  *host = h;
  *port = v;
  return true;
}

void ParseDurationField(const json& obj, const char* key, const std::string& path, nanoseconds* out,
                        Fields& f) {
  if (!obj.contains(key)) return;
  const json& v = obj[key];
  if (!v.is_string()) {
    f.Add(path + "." + key, "want a duration string like \"500ms\"");
    return;
  }
  std::string why;
  auto d = ParseDuration(v.get<std::string>(), &why);
  if (!d) {
    f.Add(path + "." + key, why.empty() ? "not a duration" : why);
  } else if (d->count() <= 0) {
    f.Add(path + "." + key, "must be positive");
  } else {
    *out = *d;
  }
}

std::optional<std::string> StringField(const json& obj, const char* key, const std::string& path,
                                       Fields& f, bool absolute_path = false) {
  if (!obj.contains(key)) return std::nullopt;
  const json& v = obj[key];
  if (!v.is_string()) {
    f.Add(path + "." + key, "want a string");
    return std::nullopt;
  }
  std::string s = v.get<std::string>();
  if (absolute_path && (s.empty() || s.front() != '/')) {
    f.Add(path + "." + key, "must be an absolute path, got \"" + s + "\"");
    return std::nullopt;
  }
  return s;
}

std::vector<std::string> ArgvField(const json& obj, const char* key, const std::string& path,
                                   Fields& f) {
  std::vector<std::string> out;
  const json& v = obj[key];
  if (!v.is_array() || v.empty()) {
    f.Add(path + "." + key, "want a non-empty array of strings");
    return out;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) {
      f.Add(path + "." + key + "[" + std::to_string(i) + "]", "want a string");
      continue;
    }
    out.push_back(v[i].get<std::string>());
  }
  if (!out.empty() && (out[0].empty() || out[0].front() != '/')) {
    f.Add(path + "." + key + "[0]",
          "must be an absolute path (no PATH search), got \"" + out[0] + "\"");
  }
  return out;
}

void ParseProbe(const json& r, const std::string& path, ReadinessProbe* probe, Fields& f) {
  if (!r.is_object()) {
    f.Add(path, "want an object with one of tcp, http, command");
    return;
  }
  static const std::set<std::string> known = {"tcp", "http", "command", "interval", "timeout"};
  for (const auto& [k, _] : r.items()) {
    if (!known.count(k))
      f.Add(path + "." + k, "unknown field (known: tcp, http, command, interval, timeout)");
  }
  int kinds = r.contains("tcp") + r.contains("http") + r.contains("command");
  if (kinds != 1) {
    f.Add(path, "want exactly one of tcp, http, command (got " + std::to_string(kinds) + ")");
  }
  if (auto tcp = StringField(r, "tcp", path, f)) {
    probe->kind = ReadinessProbe::Kind::kTcp;
    if (!ParseHostPort(*tcp, &probe->host, &probe->port)) {
      f.Add(path + ".tcp", "want HOST:PORT with port 1..65535, got \"" + *tcp + "\"");
    }
  }
  if (auto http = StringField(r, "http", path, f)) {
    probe->kind = ReadinessProbe::Kind::kHttp;
    probe->url = *http;
    static const std::regex re(R"(http://([^/]+)(/.*)?)");
    std::smatch m;
    std::string hp;
    if (!std::regex_match(*http, m, re)) {
      f.Add(path + ".http", "want http://HOST[:PORT]/PATH, got \"" + *http + "\"");
    } else {
      hp = m[1].str();
      probe->path = m[2].matched ? m[2].str() : "/";
      if (hp.find(':') == std::string::npos || hp.back() == ']') hp += ":80";
      if (!ParseHostPort(hp, &probe->host, &probe->port)) {
        f.Add(path + ".http", "bad host or port in \"" + *http + "\"");
      }
    }
  }
  if (r.contains("command")) {
    probe->kind = ReadinessProbe::Kind::kCommand;
    probe->command = ArgvField(r, "command", path, f);
  }
  ParseDurationField(r, "interval", path, &probe->interval, f);
  ParseDurationField(r, "timeout", path, &probe->timeout, f);
}

ManagedSpec ParseOne(const json& p, const std::string& path, Fields& f) {
  ManagedSpec s;
  if (!p.is_object()) {
    f.Add(path, "want an object");
    return s;
  }
  static const std::set<std::string> known = {
      "name",    "argv",        "env",         "cwd",        "netns", "log",     "restart",
      "backoff", "max_backoff", "stop_signal", "stop_grace", "ready", "overlay", "syscalls"};
  for (const auto& [k, _] : p.items()) {
    if (!known.count(k)) f.Add(path + "." + k, "unknown field");
  }
  static const std::regex name_re("[A-Za-z0-9_.-]+");
  if (!p.contains("name")) {
    f.Add(path + ".name", "required");
  } else if (auto n = StringField(p, "name", path, f)) {
    if (!std::regex_match(*n, name_re)) {
      f.Add(path + ".name", "must match [A-Za-z0-9_.-]+, got \"" + *n + "\"");
    }
    s.name = *n;
  }
  if (!p.contains("argv")) {
    f.Add(path + ".argv", "required");
  } else {
    s.argv = ArgvField(p, "argv", path, f);
  }
  if (p.contains("env")) {
    const json& e = p["env"];
    if (!e.is_object()) {
      f.Add(path + ".env", "want an object of NAME: value strings");
    } else {
      for (const auto& [k, v] : e.items()) {
        if (k.empty() || k.find('=') != std::string::npos) {
          f.Add(path + ".env." + k, "variable name must be non-empty without '='");
        } else if (!v.is_string()) {
          f.Add(path + ".env." + k, "want a string");
        } else {
          s.env[k] = v.get<std::string>();
        }
      }
    }
  }
  if (auto v = StringField(p, "cwd", path, f, true)) s.cwd = *v;
  if (auto v = StringField(p, "netns", path, f, true)) s.netns = *v;
  if (auto v = StringField(p, "log", path, f, true)) s.log = *v;
  if (auto v = StringField(p, "overlay", path, f, true)) s.overlay = *v;
  if (p.contains("syscalls")) {
    const auto& list = p["syscalls"];
    if (!list.is_array()) {
      f.Add(path + ".syscalls", "want a list of syscall names");
    } else {
      for (size_t i = 0; i < list.size(); ++i) {
        if (!list[i].is_string() || list[i].get<std::string>().empty()) {
          f.Add(path + ".syscalls[" + std::to_string(i) + "]", "want a syscall name");
        } else {
          s.syscalls.push_back(list[i].get<std::string>());
        }
      }
    }
  }
  if (auto v = StringField(p, "restart", path, f)) {
    if (*v == "never") {
      s.restart = RestartPolicy::kNever;
    } else if (*v == "on-failure") {
      s.restart = RestartPolicy::kOnFailure;
    } else if (*v == "always") {
      s.restart = RestartPolicy::kAlways;
    } else {
      f.Add(path + ".restart", "want never, on-failure or always, got \"" + *v + "\"");
    }
  }
  ParseDurationField(p, "backoff", path, &s.backoff, f);
  ParseDurationField(p, "max_backoff", path, &s.max_backoff, f);
  ParseDurationField(p, "stop_grace", path, &s.stop_grace, f);
  if (s.max_backoff < s.backoff) f.Add(path + ".max_backoff", "must not be less than backoff");
  if (p.contains("stop_signal")) {
    const json& v = p["stop_signal"];
    if (!v.is_number_integer() || v.get<int>() < 1 || v.get<int>() > 64) {
      f.Add(path + ".stop_signal", "want a signal number 1..64");
    } else {
      s.stop_signal = v.get<int>();
    }
  }
  if (p.contains("ready")) ParseProbe(p["ready"], path + ".ready", &s.ready, f);
  return s;
}

// ---- process plumbing ----------------------------------------------------------------------

// Sockets belong to the network namespace of the thread that created them, so a short-lived
// thread enters `netns` and makes the socket there; the caller's own namespace is untouched.
sys::UniqueFd SocketIn(const std::string& netns, int domain, std::string* why) {
  int fd = -1;
  int err = 0;
  const char* stage = "socket";
  auto make = [&] {
    if (!netns.empty()) {
      sys::UniqueFd ns(::open(netns.c_str(), O_RDONLY | O_CLOEXEC));
      if (!ns) {
        err = errno;
        stage = "open netns";
        return;
      }
      if (::setns(ns.get(), CLONE_NEWNET) != 0) {
        err = errno;
        stage = "setns";
        return;
      }
    }
    fd = ::socket(domain, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) err = errno;
  };
  if (netns.empty()) {
    make();
  } else {
    std::thread(make).join();
  }
  if (fd < 0 && why) *why = std::string(stage) + ": " + strerror(err);
  return sys::UniqueFd(fd);
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
  sys::UniqueFd fd = SocketIn(netns, addr.ss_family, nullptr);
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

struct ExecPlan {
  std::vector<std::string> argv_store, env_store;
  std::vector<char*> argv, envp;
  sys::UniqueFd netns, log, devnull;
  std::string cwd;
};

ExecPlan MakePlan(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env, const std::string& cwd,
                  const std::string& netns, const std::string& log, const std::string& who) {
  ExecPlan p;
  p.argv_store = argv;
  std::map<std::string, std::string> merged;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) merged[k] = v;
  for (const auto& [k, v] : merged) p.env_store.push_back(k + "=" + v);
  for (auto& a : p.argv_store) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  for (auto& e : p.env_store) p.envp.push_back(e.data());
  p.envp.push_back(nullptr);
  p.cwd = cwd.empty() ? "/" : cwd;
  if (!netns.empty()) {
    p.netns.reset(::open(netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!p.netns) ThrowErrno(who + ": open netns " + netns);
  }
  std::string out = log.empty() ? "/dev/null" : log;
  if (!log.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(log).parent_path(), ec);
  }
  p.log.reset(::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!p.log) ThrowErrno(who + ": open log " + out);
  p.devnull.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!p.devnull) ThrowErrno(who + ": open /dev/null");
  return p;
}

struct ChildFailure {
  int stage;
  int err;
};
constexpr const char* kStages[] = {"setns", "stdio", "chdir", "exec"};

// fork + exec. Only async-signal-safe calls run in the child: the parent may have threads.
// Returns the pid; throws FaultError if the child could not get as far as exec.
pid_t Spawn(const ExecPlan& plan, const std::string& who) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) ThrowErrno(who + ": pipe2");
  sys::UniqueFd rd(pipefd[0]), wr(pipefd[1]);
  pid_t pid = ::fork();
  if (pid < 0) ThrowErrno(who + ": fork");
  if (pid == 0) {
    auto fail = [&](int stage) {
      ChildFailure cf{stage, errno};
      ssize_t ignored = ::write(wr.get(), &cf, sizeof(cf));
      (void)ignored;
      ::_exit(127);
    };
    // The agent blocks SIGTERM/SIGINT and ignores SIGPIPE; exec keeps both, so reset them or
    // etcd would not stop on SIGTERM.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);
    // Own session: a terminal's Ctrl-C or the supervisor's process group never reaches it.
    ::setsid();
    if (plan.netns && ::setns(plan.netns.get(), CLONE_NEWNET) != 0) fail(0);
    if (::dup2(plan.devnull.get(), 0) < 0 || ::dup2(plan.log.get(), 1) < 0 ||
        ::dup2(plan.log.get(), 2) < 0) {
      fail(1);
    }
    if (::chdir(plan.cwd.c_str()) != 0) fail(2);
    // Whatever the parent leaked without O_CLOEXEC must not reach the child.
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    ::execve(plan.argv[0], plan.argv.data(), plan.envp.data());
    fail(3);
  }
  wr.reset();
  ChildFailure cf{};
  ssize_t n;
  do {
    n = ::read(rd.get(), &cf, sizeof(cf));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(cf))) {
    ::waitpid(pid, nullptr, 0);
    std::string what = kStages[std::clamp(cf.stage, 0, 3)];
    if (cf.stage == 3) what += " " + plan.argv_store[0];
    if (cf.stage == 2) what += " " + plan.cwd;
    throw FaultError(who + ": " + what + ": " + strerror(cf.err));
  }
  return pid;
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

// ---- config --------------------------------------------------------------------------------

std::vector<ManagedSpec> ParseManagedConfig(std::string_view json_text) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw ValidationError({{"config", std::string("not valid JSON: ") + e.what()}});
  }
  Fields f;
  const json* list = &doc;
  if (doc.is_object()) {
    for (const auto& [k, _] : doc.items()) {
      if (k != "processes") f.Add(k, "unknown field (want \"processes\")");
    }
    if (!doc.contains("processes")) {
      f.Add("processes", "required");
      throw ValidationError(f.errors);
    }
    list = &doc["processes"];
  }
  if (!list->is_array()) {
    f.Add("processes", "want an array of process objects");
    throw ValidationError(f.errors);
  }
  std::vector<ManagedSpec> out;
  std::set<std::string> names;
  for (size_t i = 0; i < list->size(); ++i) {
    std::string path = "processes[" + std::to_string(i) + "]";
    ManagedSpec s = ParseOne((*list)[i], path, f);
    if (!s.name.empty() && !names.insert(s.name).second) {
      f.Add(path + ".name", "duplicate name \"" + s.name + "\"");
    }
    out.push_back(std::move(s));
  }
  if (!f.errors.empty()) throw ValidationError(f.errors);
  return out;
}

std::string ManagedConfigToJson(const std::vector<ManagedSpec>& specs) {
  json list = json::array();
  for (const auto& s : specs) {
    json p;
    p["name"] = s.name;
    p["argv"] = s.argv;
    if (!s.env.empty()) p["env"] = s.env;
    p["cwd"] = s.cwd;
    if (!s.netns.empty()) p["netns"] = s.netns;
    if (!s.log.empty()) p["log"] = s.log;
    if (!s.overlay.empty()) p["overlay"] = s.overlay;
    if (!s.syscalls.empty()) p["syscalls"] = s.syscalls;
    p["restart"] = s.restart == RestartPolicy::kAlways      ? "always"
                   : s.restart == RestartPolicy::kOnFailure ? "on-failure"
                                                            : "never";
    p["backoff"] = FormatDuration(s.backoff);
    p["max_backoff"] = FormatDuration(s.max_backoff);
    p["stop_signal"] = s.stop_signal;
    p["stop_grace"] = FormatDuration(s.stop_grace);
    const auto& r = s.ready;
    if (r.kind != ReadinessProbe::Kind::kNone) {
      json j;
      if (r.kind == ReadinessProbe::Kind::kTcp) {
        j["tcp"] = (r.host.find(':') != std::string::npos ? "[" + r.host + "]" : r.host) + ":" +
                   std::to_string(r.port);
      } else if (r.kind == ReadinessProbe::Kind::kHttp) {
        j["http"] = r.url;
      } else {
        j["command"] = r.command;
      }
      j["interval"] = FormatDuration(r.interval);
      j["timeout"] = FormatDuration(r.timeout);
      p["ready"] = j;
    }
    list.push_back(p);
  }
  return json{{"processes", list}}.dump(2) + "\n";
}

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

// ---- ManagedProcess ------------------------------------------------------------------------

const char* ToString(ProcessEvent::Kind k) {
  switch (k) {
    case ProcessEvent::Kind::kStart:
      return "start";
    case ProcessEvent::Kind::kAdopt:
      return "adopt";
    case ProcessEvent::Kind::kExit:
      return "exit";
  }
  return "?";
}

namespace {

std::string ExitCause(int status) {
  if (status < 0) return "exited (status unknown: adopted, not the agent's child)";
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* abbrev = sigabbrev_np(WTERMSIG(status));
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + (abbrev ? abbrev : "?") +
           ")" + (WCOREDUMP(status) ? ", core dumped" : "");
  }
  return "ended with wait status " + std::to_string(status);
}

// Signals that do not end a process by default: a fault sending one is no reason for an exit.
bool Terminates(int signal) {
  switch (signal) {
    case 0:
    case SIGSTOP:
    case SIGCONT:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
    case SIGCHLD:
    case SIGURG:
    case SIGWINCH:
      return false;
    default:
      return true;
  }
}

}  // namespace

std::vector<ProcessEvent> ManagedProcess::Events() const {
  std::lock_guard lk(mu_);
  return events_;
}

void ManagedProcess::RecordLocked(ProcessEvent e) {
  events_.push_back(std::move(e));
  if (events_.size() > kMaxEvents) events_.erase(events_.begin());
}

off_t ManagedProcess::LogSizeLocked() const {
  struct stat st {};
  if (spec_.log.empty() || ::stat(spec_.log.c_str(), &st) != 0) return 0;
  return st.st_size;
}

void ManagedProcess::NoteSignal(pid_t pid, int signal, const std::string& by) {
  std::lock_guard lk(mu_);
  if (pid == 0 || pid != pid_ || !Terminates(signal)) return;
  noted_signal_ = signal;
  const char* abbrev = sigabbrev_np(signal);
  noted_by_ = by + " (" + (abbrev ? abbrev : std::to_string(signal)) + ")";
}

ManagedProcess::ManagedProcess(ManagedSpec spec, std::filesystem::path state_dir)
    : spec_(std::move(spec)), state_dir_(std::move(state_dir)) {
  wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_) ThrowErrno("managed " + spec_.name + ": eventfd");
  next_backoff_ = spec_.backoff;
  monitor_ = std::thread([this] { Monitor(); });
}

ManagedProcess::~ManagedProcess() {
  {
    std::lock_guard lk(mu_);
    quit_ = true;
  }
  Wake();
  monitor_.join();
}

std::filesystem::path ManagedProcess::state_file() const {
  return state_dir_ / (spec_.name + ".json");
}

void ManagedProcess::Wake() {
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_.get(), &one, sizeof(one));
  (void)ignored;
}

pid_t ManagedProcess::Pid() const {
  std::lock_guard lk(mu_);
  return pid_;
}
uint64_t ManagedProcess::StartTime() const {
  std::lock_guard lk(mu_);
  return start_time_;
}
bool ManagedProcess::adopted() const {
  std::lock_guard lk(mu_);
  return adopted_;
}
int ManagedProcess::restarts() const {
  std::lock_guard lk(mu_);
  return restarts_;
}
int ManagedProcess::last_status() const {
  std::lock_guard lk(mu_);
  return last_status_;
}

void ManagedProcess::WriteStateLocked() {
  std::error_code ec;
  std::filesystem::create_directories(state_dir_, ec);
  json j{{"name", spec_.name},        {"pid", pid_},        {"start_time", start_time_},
         {"log_offset", log_offset_}, {"argv", spec_.argv}, {"keeper", keeper_.string()}};
  auto tmp = state_file();
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump() << "\n";
    if (!out) throw FaultError("managed " + spec_.name + ": cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, state_file());
}

bool ManagedProcess::AdoptLocked() {
  std::ifstream in(state_file());
  if (!in) return false;
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  pid_t pid = j.value("pid", 0);
  uint64_t start = j.value("start_time", uint64_t{0});
  if (pid <= 0 || !SameProcess(pid, start)) return false;
  sys::UniqueFd fd(pidfd_open(pid, 0));
  // Checked again after opening: the pidfd now pins this exact process.
  if (!fd || !SameProcess(pid, start)) return false;
  pid_ = pid;
  start_time_ = start;
  pidfd_ = std::move(fd);
  own_child_ = false;
  adopted_ = true;
  keeper_ = j.value("keeper", std::string());
  log_offset_ = j.value("log_offset", off_t{0});
  noted_signal_ = 0;
  RecordLocked({ProcessEvent::Kind::kAdopt,
                std::chrono::system_clock::now(),
                pid_,
                "running when the agent started",
                false,
                "",
                {},
                ""});
  // Its filter's keeper kept the process running while no agent was attached; take over.
  if (!spec_.syscalls.empty()) AttachInterceptorLocked();
  return true;
}

void ManagedProcess::AttachInterceptorLocked() {
  if (keeper_.empty()) throw FaultError("managed " + spec_.name + ": no filter keeper recorded");
  auto attached = syscalls::AttachKeeper(keeper_.string());
  interceptor_ = std::make_shared<syscalls::SyscallInterceptor>(
      std::move(attached.listener), std::move(attached.connection), spec_.syscalls);
}

std::shared_ptr<syscalls::SyscallInterceptor> ManagedProcess::interceptor() const {
  std::lock_guard lk(mu_);
  return interceptor_;
}

void ManagedProcess::SpawnLocked() {
  std::string who = "managed " + spec_.name;
  interceptor_.reset();
  keeper_.clear();
  if (!spec_.syscalls.empty()) {
    // The keeper binds its socket here, before the first state file would create the directory.
    std::filesystem::create_directories(state_dir_);
    const std::string stem = spec_.name + ".keeper.";
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(state_dir_, ec)) {
      // Sockets of earlier processes' keepers: gone with them, or going (a SIGKILLed keeper
      // cannot unlink its own).
      if (e.path().filename().string().starts_with(stem)) std::filesystem::remove(e.path(), ec);
    }
    char nonce[9];
    snprintf(nonce, sizeof nonce, "%08x", std::random_device{}());
    keeper_ = state_dir_ / (stem + nonce + ".sock");
  }
  // Under a seccomp filter the loader execs the real argv; its keeper serves the filter to us.
  std::vector<std::string> argv = spec_.syscalls.empty()
                                      ? spec_.argv
                                      : syscalls::NotifyChannel::WrapArgvWithKeeper(
                                            spec_.argv, spec_.syscalls, keeper_.string());
  ExecPlan plan = MakePlan(argv, spec_.env, spec_.cwd, spec_.netns, spec_.log, who);
  const off_t log_offset = LogSizeLocked();
  pid_t pid = Spawn(plan, who);
  sys::UniqueFd fd(pidfd_open(pid, 0));
  if (!fd) {
    int err = errno;
    ::kill(pid, SIGKILL);  // our unreaped child
    ::waitpid(pid, nullptr, 0);
    ThrowErrno(who + ": pidfd_open", err);
  }
  auto info = ReadProc(pid);
  pid_ = pid;
  start_time_ = info ? info->start_time : 0;
  pidfd_ = std::move(fd);
  own_child_ = true;
  adopted_ = false;
  started_at_ = Clock::now();
  log_offset_ = log_offset;
  noted_signal_ = 0;
  RecordLocked({ProcessEvent::Kind::kStart,
                std::chrono::system_clock::now(),
                pid_,
                spawning_by_policy_ ? "restart policy" : "agent",
                false,
                "",
                {},
                ""});
  WriteStateLocked();
  if (!spec_.syscalls.empty()) AttachInterceptorLocked();
}

void ManagedProcess::Start() {
  {
    std::lock_guard lk(mu_);
    want_running_ = true;
    restart_at_.reset();
    if (pid_ != 0) return;
    if (!AdoptLocked()) SpawnLocked();
  }
  Wake();
}

void ManagedProcess::Monitor() {
  std::unique_lock lk(mu_);
  while (!quit_) {
    int pfd = pidfd_.get();
    int timeout = -1;
    if (restart_at_) {
      auto left = std::chrono::duration_cast<milliseconds>(*restart_at_ - Clock::now()).count();
      timeout = static_cast<int>(std::max<long>(left, 0));
    }
    lk.unlock();
    pollfd fds[2] = {{wake_fd_.get(), POLLIN, 0}, {pfd, POLLIN, 0}};
    int n = ::poll(fds, pfd >= 0 ? 2 : 1, timeout);
    uint64_t drain;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      ssize_t ignored = ::read(wake_fd_.get(), &drain, sizeof(drain));
      (void)ignored;
    }
    lk.lock();
    if (quit_) break;
    // Only this thread clears pidfd_, so the fd polled is still the current process's.
    if (n > 0 && pfd >= 0 && (fds[1].revents & (POLLIN | POLLHUP)) && pidfd_.get() == pfd) {
      int st = -1;
      if (own_child_) {
        // WNOHANG: where SIGCHLD is ignored the kernel reaps children itself and a blocking
        // waitpid would hang (with the lock held) until every child is gone.
        for (int tries = 0; tries < 100; ++tries) {
          int s = 0;
          pid_t r = ::waitpid(pid_, &s, WNOHANG);
          if (r == pid_) st = s;
          if (r != 0) break;
          std::this_thread::sleep_for(milliseconds(1));
        }
      }
      last_status_ = st;
      bool failed = !(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
      auto ran = Clock::now() - started_at_;
      ProcessEvent exit{ProcessEvent::Kind::kExit,
                        std::chrono::system_clock::now(),
                        pid_,
                        ExitCause(st),
                        false,
                        "",
                        {},
                        ""};
      if (!stop_reason_.empty()) {
        exit.expected = true;
        exit.expected_by = stop_reason_;
      } else if (noted_signal_ != 0) {
        exit.expected = true;
        exit.expected_by = noted_by_;
      }
      stop_reason_.clear();
      noted_signal_ = 0;
      const off_t from = log_offset_;
      const pid_t dead = pid_;
      const auto at = exit.at;
      // Recorded before anyone waiting for the exit (Stop) wakes, so it is there when they look.
      RecordLocked(std::move(exit));
      pid_ = 0;
      start_time_ = 0;
      pidfd_.reset();
      cv_.notify_all();
      // What it wrote before it ended, read without the lock (a large log takes a while), then
      // added to its exit event.
      if (!spec_.log.empty()) {
        lk.unlock();
        OutputExcerpt out = ReadOutputExcerpt(spec_.log, from);
        lk.lock();
        for (auto it = events_.rbegin(); it != events_.rend(); ++it) {
          if (it->kind == ProcessEvent::Kind::kExit && it->pid == dead && it->at == at) {
            it->fatal_lines = std::move(out.fatal_lines);
            it->output_tail = std::move(out.tail);
            break;
          }
        }
      }
      bool again = want_running_ && (spec_.restart == RestartPolicy::kAlways ||
                                     (spec_.restart == RestartPolicy::kOnFailure && failed));
      if (again) {
        // A process that ran a while before dying starts over at the short delay.
        if (ran > spec_.max_backoff) next_backoff_ = spec_.backoff;
        restart_at_ = Clock::now() + next_backoff_;
        next_backoff_ = std::min(next_backoff_ * 2, spec_.max_backoff);
      }
    }
    if (restart_at_ && Clock::now() >= *restart_at_) {
      restart_at_.reset();
      if (want_running_ && pid_ == 0) {
        try {
          spawning_by_policy_ = true;
          SpawnLocked();
          spawning_by_policy_ = false;
          ++restarts_;
        } catch (const std::exception&) {
          spawning_by_policy_ = false;
          restart_at_ = Clock::now() + next_backoff_;
          next_backoff_ = std::min(next_backoff_ * 2, spec_.max_backoff);
        }
      }
    }
  }
}

void ManagedProcess::Stop(int signal, nanoseconds grace) {
  std::unique_lock lk(mu_);
  want_running_ = false;
  restart_at_.reset();
  if (pid_ != 0) {
    if (stop_reason_.empty()) stop_reason_ = "agent stop";
    pidfd_send_signal(pidfd_.get(), signal, nullptr, 0);
    // A paused (SIGSTOPped) process only acts on the signal once continued.
    if (signal != SIGSTOP && signal != SIGKILL)
      pidfd_send_signal(pidfd_.get(), SIGCONT, nullptr, 0);
    if (!cv_.wait_for(lk, grace, [&] { return pid_ == 0; })) {
      pidfd_send_signal(pidfd_.get(), SIGKILL, nullptr, 0);
      if (!cv_.wait_for(lk, std::chrono::seconds(10), [&] { return pid_ == 0; })) {
        throw FaultError("managed " + spec_.name + ": pid " + std::to_string(pid_) +
                         " did not exit 10s after SIGKILL");
      }
    }
  }
  std::error_code ec;
  std::filesystem::remove(state_file(), ec);
}

bool ManagedProcess::WaitReady(nanoseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    pid_t pid;
    bool coming;  // running, or a restart is due
    {
      std::lock_guard lk(mu_);
      pid = pid_;
      coming = pid_ != 0 || (want_running_ && restart_at_.has_value());
    }
    // Exited and nothing will start it again: waiting longer cannot help.
    if (!coming) return false;
    if (pid != 0 && ProbeOnce(spec_.ready, spec_.netns)) {
      // The probe may have been answered by a process that died meanwhile: check again.
      std::lock_guard lk(mu_);
      if (pid_ == pid) return true;
    }
    if (Clock::now() >= deadline) return false;
    auto step =
        spec_.ready.kind == ReadinessProbe::Kind::kNone ? milliseconds(10) : spec_.ready.interval;
    std::this_thread::sleep_for(
        std::min<nanoseconds>(step, deadline - Clock::now() + milliseconds(1)));
  }
}

nanoseconds ManagedProcess::Restart(int signal, nanoseconds grace) {
  auto t0 = Clock::now();
  {
    std::lock_guard lk(mu_);
    if (pid_ != 0) stop_reason_ = "agent restart";
  }
  Stop(signal, grace);
  Start();
  if (!WaitReady()) {
    throw FaultError("managed " + spec_.name + ": not ready " +
                     FormatDuration(spec_.ready.timeout) + " after restart" +
                     (spec_.log.empty() ? "" : " (see " + spec_.log + ")"));
  }
  return Clock::now() - t0;
}

// ---- ManagedSet ----------------------------------------------------------------------------

ManagedSet::ManagedSet(std::vector<ManagedSpec> specs, std::filesystem::path state_dir) {
  for (auto& s : specs) procs_.push_back(std::make_unique<ManagedProcess>(std::move(s), state_dir));
}

std::unique_ptr<ManagedSet> ManagedSet::FromFile(const std::filesystem::path& config,
                                                 const std::filesystem::path& state_dir) {
  std::ifstream in(config);
  if (!in) throw ValidationError({{"--managed-config", "cannot read " + config.string()}});
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return std::make_unique<ManagedSet>(ParseManagedConfig(ss.str()), state_dir);
  } catch (const ValidationError& e) {
    FieldErrors errs = e.errors();
    for (auto& fe : errs) fe.field = config.string() + ": " + fe.field;
    throw ValidationError(errs);
  }
}

void ManagedSet::StartAll() {
  for (auto& p : procs_) p->Start();
}

ManagedProcess& ManagedSet::Get(std::string_view name) const {
  for (const auto& p : procs_) {
    if (p->spec().name == name) return *p;
  }
  std::string known;
  for (const auto& p : procs_) known += (known.empty() ? "" : ", ") + p->spec().name;
  throw FaultError("no managed process named \"" + std::string(name) +
                   "\" (managed: " + (known.empty() ? "none" : known) + ")");
}

std::vector<std::string> ManagedSet::Names() const {
  std::vector<std::string> out;
  for (const auto& p : procs_) out.push_back(p->spec().name);
  return out;
}

int ManagedSet::Pid(std::string_view name) const { return Get(name).Pid(); }

nanoseconds ManagedSet::Restart(std::string_view name, int signal, nanoseconds grace) {
  return Get(name).Restart(signal, grace);
}

nanoseconds ManagedSet::Start(std::string_view name) {
  auto& p = Get(name);
  auto t0 = Clock::now();
  p.Start();
  if (!p.WaitReady()) throw FaultError("managed " + std::string(name) + ": not ready after start");
  return Clock::now() - t0;
}

void ManagedSet::NoteSignal(int pid, int signal, const std::string& by) {
  for (auto& p : procs_) p->NoteSignal(pid, signal, by);
}

std::shared_ptr<syscalls::SyscallInterceptor> ManagedSet::Interceptor(std::string_view name) {
  return Get(name).interceptor();
}

}  // namespace faultline::faults::process
