#include "net_lab.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "faults/sys/prefix.h"
#include "faults/sys/rtnl.h"

namespace faultline::faults::net::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

sockaddr_in Addr(const char* ip, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, ip, &sa.sin_addr);
  return sa;
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
  auto ip = sys::ParseIpv4(cidr.substr(0, slash));
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
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  auto to = Addr(ip.c_str(), port);
  connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to);
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

PeerServers::PeerServers(int ns_fd) : ns_(ns_fd) {
  thread_ = std::thread([this] {
    InNetns in(ns_);
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rcv = 4 << 20;
    setsockopt(udp, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
    auto ua = Addr(kAddrB, kEchoPort);
    bind(udp, reinterpret_cast<sockaddr*>(&ua), sizeof ua);
    std::vector<int> listeners;
    for (uint16_t port : {kTcpPort, kExemptPort, kSinkPort}) {
      int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      auto la = Addr(kAddrB, port);
      bind(l, reinterpret_cast<sockaddr*>(&la), sizeof la);
      listen(l, 64);
      listeners.push_back(l);
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
      std::vector<pollfd> p{{udp, POLLIN, 0}};
      for (int l : listeners) p.push_back({l, POLLIN, 0});
      for (int c : conns) p.push_back({c, POLLIN, 0});
      poll(p.data(), p.size(), 10);
      if (p[0].revents & POLLIN) {
        for (;;) {
          sockaddr_in from{};
          socklen_t len = sizeof from;
          ssize_t n = recvfrom(udp, buf.data(), buf.size(), MSG_DONTWAIT,
                               reinterpret_cast<sockaddr*>(&from), &len);
          if (n <= 0) break;
          sendto(udp, buf.data(), n, 0, reinterpret_cast<sockaddr*>(&from), len);
        }
      }
      for (size_t i = 0; i < listeners.size(); ++i)
        if (p[1 + i].revents & POLLIN)
          conns.push_back(accept4(listeners[i], nullptr, nullptr, SOCK_CLOEXEC));
      for (size_t i = 0; i < conns.size(); ++i)
        if (p[1 + listeners.size() + i].revents & (POLLIN | POLLHUP)) {
          ssize_t n = read(conns[i], buf.data(), buf.size());
          if (n > 0) sunk_ += n;
        }
    }
    for (int c : conns) close(c);
    for (int l : listeners) close(l);
    close(udp);
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

std::vector<double> EchoRtts(int n, int timeout_ms) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto to = Addr(kAddrB, kEchoPort);
  connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to);
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
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int rcv = 4 << 20;
  setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
  auto to = Addr(kAddrB, kEchoPort);
  connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to);
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
