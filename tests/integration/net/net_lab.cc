#include "net_lab.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "faults/sys/prefix.h"
#include "faults/sys/rtnl.h"

namespace faultline::faults::net::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// An IPv4 or IPv6 socket address, with its length.
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const { return ss.ss_family; }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&ss); }
};

SockAddr Addr(const char* ip, uint16_t port) {
  SockAddr a;
  if (std::string_view(ip).find(':') != std::string_view::npos) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    inet_pton(AF_INET6, ip, &s6->sin6_addr);
    a.len = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&a.ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    inet_pton(AF_INET, ip, &s4->sin_addr);
    a.len = sizeof(sockaddr_in);
  }
  return a;
}

// A new network namespace, returned as an fd (made in a throwaway thread).
int NewNetns() {
  int fd = -1;
  std::thread([&] {
    if (unshare(CLONE_NEWNET) == 0) fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  }).join();
  if (fd < 0) throw std::runtime_error("cannot create a network namespace");
  return fd;
}

// `cidr` ("10.213.0.1/24") on `dev`.
void AddAddr(sys::Rtnl& nl, const char* dev, const std::string& cidr) {
  const auto slash = cidr.find('/');
  auto ip = sys::ParseIp(cidr.substr(0, slash));
  if (!ip) throw std::runtime_error("bad address " + cidr);
  nl.AddAddress(dev, *ip, std::stoi(cidr.substr(slash + 1)));
}

// Runs fn on a thread inside namespace ns with a route socket opened there.
template <typename Fn>
void InNs(int ns, Fn fn) {
  std::string error;
  std::thread([&] {
    try {
      InNetns in(ns);
      sys::Rtnl nl;
      fn(nl);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }).join();
  if (!error.empty()) throw std::runtime_error("lab: " + error);
}

// Waits until `name` has carrier (veth: both ends up), so the first packet of a test is not
// lost to a link still coming up.
void WaitOperUp(sys::Rtnl& nl, const char* name) {
  for (int i = 0; i < 200; ++i) {
    if (nl.Carrier(name)) return;
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error(std::string(name) + " has no carrier after 2 s");
}

}  // namespace

InNetns::InNetns(int ns_fd) {
  old_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (old_ < 0 || setns(ns_fd, CLONE_NEWNET) != 0) throw std::runtime_error("setns failed");
}
InNetns::~InNetns() {
  setns(old_, CLONE_NEWNET);
  close(old_);
}

Lab::Lab() {
  a_ = NewNetns();
  b_ = NewNetns();
  const int b = b_;
  InNs(a_, [b](sys::Rtnl& nl) {
    nl.AddVeth("va", "vb", b);
    AddAddr(nl, "va", std::string(kAddrA) + "/24");
    nl.SetUp("va");
    nl.SetUp("lo");
  });
  InNs(b_, [](sys::Rtnl& nl) {
    AddAddr(nl, "vb", std::string(kAddrB) + "/24");
    nl.SetUp("vb");
    nl.SetUp("lo");
    WaitOperUp(nl, "vb");
  });
  InNs(a_, [](sys::Rtnl& nl) { WaitOperUp(nl, "va"); });
  // IPv6 where the kernel has it (the kernel lane's may not): IPv6 tests then fail on their own.
  try {
    InNs(a_, [](sys::Rtnl& nl) { AddAddr(nl, "va", std::string(kAddrA6) + "/64"); });
    InNs(b_, [](sys::Rtnl& nl) { AddAddr(nl, "vb", std::string(kAddrB6) + "/64"); });
  } catch (const std::exception&) {
  }
}

Lab::~Lab() {
  close(a_);
  close(b_);
}

Star::Star(int n, std::string prefix) : prefix_(std::move(prefix)) {
  hub_ = NewNetns();
  const std::string hub_addr = prefix_ + "254/24";
  InNs(hub_, [&](sys::Rtnl& nl) {
    nl.AddBridge("br0");
    AddAddr(nl, "br0", hub_addr);
    nl.SetUp("br0");
    nl.SetUp("lo");
  });
  for (int i = 0; i < n; ++i) {
    const int m = NewNetns();
    members_.push_back(m);
    const std::string hub_side = "vm" + std::to_string(i);
    InNs(hub_, [&](sys::Rtnl& nl) {
      nl.AddVeth(hub_side, "eth0", m);
      nl.SetMaster(hub_side, "br0");
      nl.SetUp(hub_side);
    });
    const std::string cidr = addr(i) + "/24";
    InNs(m, [&](sys::Rtnl& nl) {
      AddAddr(nl, "eth0", cidr);
      nl.SetUp("eth0");
      nl.SetUp("lo");
      WaitOperUp(nl, "eth0");
    });
  }
}

Star::~Star() {
  for (int m : members_) close(m);
  close(hub_);
}

bool CanConnectTo(const std::string& ip, uint16_t port, int timeout_ms) {
  auto to = Addr(ip.c_str(), port);
  int s = socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  connect(s, to.get(), to.len);
  pollfd p{s, POLLOUT, 0};
  bool ok = false;
  if (poll(&p, 1, timeout_ms) == 1) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
    ok = err == 0;
  }
  close(s);
  return ok;
}

PeerServers::PeerServers(int ns_fd, int fifo_priority) : ns_(ns_fd) {
  thread_ = std::thread([this, fifo_priority] {
    InNetns in(ns_);
    if (fifo_priority > 0) {
      sched_param sp{};
      sp.sched_priority = fifo_priority;
      pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
    }
    std::vector<int> udps;
    std::vector<int> listeners;
    for (const char* ip : {kAddrB, kAddrB6}) {
      auto ua = Addr(ip, kEchoPort);
      int udp = socket(ua.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
      int rcv = 4 << 20;
      setsockopt(udp, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
      bind(udp, ua.get(), ua.len);
      udps.push_back(udp);
      for (uint16_t port : {kTcpPort, kExemptPort, kSinkPort}) {
        auto la = Addr(ip, port);
        int l = socket(la.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        bind(l, la.get(), la.len);
        listen(l, 64);
        listeners.push_back(l);
      }
    }
    ready_ = true;
    std::vector<int> conns;
    std::vector<char> buf(65536);
    while (!stop_) {
      if (want_csum_) {
        // /proc/thread-self/net is this thread's namespace, b.
        std::ifstream snmp("/proc/thread-self/net/snmp");
        std::string line, header;
        while (std::getline(snmp, line)) {
          if (!line.starts_with("Udp:")) continue;
          if (header.empty()) {
            header = line;
            continue;
          }
          std::istringstream hs(header), vs(line);
          std::string h, v;
          while (hs >> h && vs >> v)
            if (h == "InCsumErrors") csum_errors_ = std::stoll(v);
          break;
        }
        want_csum_ = 0;
      }
      std::vector<pollfd> p;
      for (int u : udps) p.push_back({u, POLLIN, 0});
      for (int l : listeners) p.push_back({l, POLLIN, 0});
      for (int c : conns) p.push_back({c, POLLIN, 0});
      poll(p.data(), p.size(), 10);
      for (size_t u = 0; u < udps.size(); ++u) {
        if (!(p[u].revents & POLLIN)) continue;
        for (;;) {
          sockaddr_storage from{};
          socklen_t len = sizeof from;
          ssize_t n = recvfrom(udps[u], buf.data(), buf.size(), MSG_DONTWAIT,
                               reinterpret_cast<sockaddr*>(&from), &len);
          if (n <= 0) break;
          sendto(udps[u], buf.data(), n, 0, reinterpret_cast<sockaddr*>(&from), len);
        }
      }
      const size_t first_listener = udps.size();
      const size_t first_conn = first_listener + listeners.size();
      // Only the connections that were polled (the ones accepted below were not: reading their
      // poll entries ran past the array, ASan's heap-buffer-overflow); a closed one is dropped,
      // or its EOF would wake every poll at once.
      std::vector<int> open_conns;
      for (size_t i = 0; i < conns.size(); ++i) {
        if (p[first_conn + i].revents & (POLLIN | POLLHUP | POLLERR)) {
          ssize_t n = read(conns[i], buf.data(), buf.size());
          if (n > 0) {
            sunk_ += n;
          } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            close(conns[i]);
            continue;
          }
        }
        open_conns.push_back(conns[i]);
      }
      conns = std::move(open_conns);
      for (size_t i = 0; i < listeners.size(); ++i)
        if (p[first_listener + i].revents & POLLIN)
          conns.push_back(accept4(listeners[i], nullptr, nullptr, SOCK_CLOEXEC));
    }
    for (int c : conns) close(c);
    for (int l : listeners) close(l);
    for (int u : udps) close(u);
  });
  while (!ready_) std::this_thread::sleep_for(1ms);
}

PeerServers::~PeerServers() {
  stop_ = true;
  thread_.join();
}

int64_t PeerServers::ReadCsumErrors() {
  want_csum_ = 1;
  while (want_csum_) std::this_thread::sleep_for(1ms);
  return csum_errors_;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

std::vector<double> EchoRtts(int n, int timeout_ms, const char* ip) {
  auto to = Addr(ip, kEchoPort);
  int s = socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  connect(s, to.get(), to.len);
  std::vector<double> out;
  uint32_t buf[16] = {};
  for (int i = 0; i < n; ++i) {
    buf[0] = 0x80000000u | static_cast<uint32_t>(i);
    auto t0 = Clock::now();
    send(s, buf, sizeof buf, 0);
    pollfd p{s, POLLIN, 0};
    // Skip stale echoes of earlier probes.
    while (poll(&p, 1, timeout_ms) == 1) {
      uint32_t got[16];
      if (recv(s, got, sizeof got, 0) > 0 && got[0] == buf[0]) {
        out.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        break;
      }
    }
  }
  close(s);
  return out;
}

std::vector<uint32_t> EchoSequence(int n, int gap_us, int settle_ms) {
  auto to = Addr(kAddrB, kEchoPort);
  int s = socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int rcv = 4 << 20;
  setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
  connect(s, to.get(), to.len);
  std::vector<uint32_t> got;
  auto drain = [&](int timeout_ms) {
    pollfd p{s, POLLIN, 0};
    uint32_t id;
    while (poll(&p, 1, timeout_ms) == 1) {
      if (recv(s, &id, sizeof id, 0) == sizeof id && id < static_cast<uint32_t>(n))
        got.push_back(id);
      timeout_ms = 0;
    }
  };
  for (uint32_t i = 0; i < static_cast<uint32_t>(n); ++i) {
    send(s, &i, sizeof i, 0);
    std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
    drain(0);
  }
  drain(settle_ms);
  close(s);
  return got;
}

int EchoesOf(int n) {
  auto seq = EchoSequence(n);
  std::sort(seq.begin(), seq.end());
  return static_cast<int>(std::unique(seq.begin(), seq.end()) - seq.begin());
}

bool CanConnect(uint16_t port, int timeout_ms) { return CanConnectTo(kAddrB, port, timeout_ms); }

}  // namespace faultline::faults::net::testing
