#include "net_lab.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>

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

void Check(int err, const std::string& what) {
  if (err < 0) throw std::runtime_error(what + ": " + nl_geterror(err));
}

void Up(nl_sock* s, const char* name) {
  rtnl_link* l = nullptr;
  Check(rtnl_link_get_kernel(s, 0, name, &l), std::string("find ") + name);
  rtnl_link* change = rtnl_link_alloc();
  rtnl_link_set_flags(change, IFF_UP);
  int err = rtnl_link_change(s, l, change, 0);
  rtnl_link_put(change);
  rtnl_link_put(l);
  Check(err, std::string("up ") + name);
}

void AddAddr(nl_sock* s, const char* dev, const std::string& cidr) {
  rtnl_link* l = nullptr;
  Check(rtnl_link_get_kernel(s, 0, dev, &l), std::string("find ") + dev);
  rtnl_addr* a = rtnl_addr_alloc();
  rtnl_addr_set_ifindex(a, rtnl_link_get_ifindex(l));
  nl_addr* local = nullptr;
  Check(nl_addr_parse(cidr.c_str(), AF_INET, &local), "parse " + cidr);
  rtnl_addr_set_local(a, local);
  int err = rtnl_addr_add(s, a, 0);
  nl_addr_put(local);
  rtnl_addr_put(a);
  rtnl_link_put(l);
  Check(err, "address " + cidr);
}

// Runs fn on a thread inside namespace ns with a route socket.
template <typename Fn>
void InNs(int ns, Fn fn) {
  std::string error;
  std::thread([&] {
    try {
      InNetns in(ns);
      nl_sock* s = nl_socket_alloc();
      Check(nl_connect(s, NETLINK_ROUTE), "connect");
      try {
        fn(s);
      } catch (...) {
        nl_socket_free(s);
        throw;
      }
      nl_socket_free(s);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }).join();
  if (!error.empty()) throw std::runtime_error("lab: " + error);
}

// Waits until `name` has carrier (veth: both ends up), so the first packet of a test is not
// lost to a link still coming up.
void WaitOperUp(nl_sock* s, const char* name) {
  for (int i = 0; i < 200; ++i) {
    rtnl_link* l = nullptr;
    if (rtnl_link_get_kernel(s, 0, name, &l) == 0 && l) {
      const bool up = rtnl_link_get_carrier(l) != 0;
      rtnl_link_put(l);
      if (up) return;
    }
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
  InNs(a_, [b](nl_sock* s) {
    rtnl_link* veth = rtnl_link_veth_alloc();
    rtnl_link_set_name(veth, "va");
    rtnl_link* peer = rtnl_link_veth_get_peer(veth);
    rtnl_link_set_name(peer, "vb");
    rtnl_link_set_ns_fd(peer, b);
    int err = rtnl_link_add(s, veth, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(peer);
    rtnl_link_veth_release(veth);
    Check(err, "veth");
    AddAddr(s, "va", std::string(kAddrA) + "/24");
    Up(s, "va");
    Up(s, "lo");
  });
  InNs(b_, [](nl_sock* s) {
    AddAddr(s, "vb", std::string(kAddrB) + "/24");
    Up(s, "vb");
    Up(s, "lo");
    WaitOperUp(s, "vb");
  });
  InNs(a_, [](nl_sock* s) { WaitOperUp(s, "va"); });
}

Lab::~Lab() {
  close(a_);
  close(b_);
}

Star::Star(int n, std::string prefix) : prefix_(std::move(prefix)) {
  hub_ = NewNetns();
  const std::string hub_addr = prefix_ + "254/24";
  InNs(hub_, [&](nl_sock* s) {
    rtnl_link* br = rtnl_link_alloc();
    rtnl_link_set_name(br, "br0");
    rtnl_link_set_type(br, "bridge");
    int err = rtnl_link_add(s, br, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(br);
    Check(err, "bridge");
    AddAddr(s, "br0", hub_addr);
    Up(s, "br0");
    Up(s, "lo");
  });
  for (int i = 0; i < n; ++i) {
    const int m = NewNetns();
    members_.push_back(m);
    const std::string hub_side = "vm" + std::to_string(i);
    InNs(hub_, [&](nl_sock* s) {
      rtnl_link* veth = rtnl_link_veth_alloc();
      rtnl_link_set_name(veth, hub_side.c_str());
      rtnl_link* peer = rtnl_link_veth_get_peer(veth);
      rtnl_link_set_name(peer, "eth0");
      rtnl_link_set_ns_fd(peer, m);
      int err = rtnl_link_add(s, veth, NLM_F_CREATE | NLM_F_EXCL);
      rtnl_link_put(peer);
      rtnl_link_veth_release(veth);
      Check(err, "veth " + hub_side);
      rtnl_link* l = nullptr;
      rtnl_link* br = nullptr;
      Check(rtnl_link_get_kernel(s, 0, hub_side.c_str(), &l), "find " + hub_side);
      Check(rtnl_link_get_kernel(s, 0, "br0", &br), "find br0");
      rtnl_link* change = rtnl_link_alloc();
      rtnl_link_set_master(change, rtnl_link_get_ifindex(br));
      rtnl_link_set_flags(change, IFF_UP);
      err = rtnl_link_change(s, l, change, 0);
      rtnl_link_put(change);
      rtnl_link_put(l);
      rtnl_link_put(br);
      Check(err, "enslave " + hub_side);
    });
    const std::string cidr = addr(i) + "/24";
    InNs(m, [&](nl_sock* s) {
      AddAddr(s, "eth0", cidr);
      Up(s, "eth0");
      Up(s, "lo");
      WaitOperUp(s, "eth0");
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

bool CanConnect(uint16_t port, int timeout_ms) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  auto to = Addr(kAddrB, port);
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

}  // namespace faultline::faults::net::testing
