#pragma once

// Test lab for network faults: two fresh network namespaces ("a" runs the fault, "b" is the
// peer) joined by a veth pair va/vb, built over netlink so it also works in the kernel-lane VM
// (no iproute2 there). The namespaces are anonymous and held by file descriptors: they vanish
// when the Lab is destroyed or the process dies, whatever the test did.

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace faultline::faults::net::testing {

inline constexpr char kAddrA[] = "10.213.0.1";
inline constexpr char kAddrB[] = "10.213.0.2";
// The same link is dual stack: a and b also have these (a private ULA /64).
inline constexpr char kAddrA6[] = "fd00:fa17:ffff::1";
inline constexpr char kAddrB6[] = "fd00:fa17:ffff::2";
inline constexpr uint16_t kEchoPort = 7100;
inline constexpr uint16_t kTcpPort = 7101;
inline constexpr uint16_t kExemptPort = 7102;
inline constexpr uint16_t kSinkPort = 7103;

// Moves the calling thread into a namespace (by fd) and back on destruction.
class InNetns {
 public:
  explicit InNetns(int ns_fd);
  ~InNetns();
  InNetns(const InNetns&) = delete;
  InNetns& operator=(const InNetns&) = delete;

 private:
  int old_;
};

class Lab {
 public:
  Lab();  // throws std::runtime_error with the step that failed
  ~Lab();
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;
  int a() const { return a_; }
  int b() const { return b_; }

 private:
  int a_ = -1, b_ = -1;
};

// A hub namespace holding bridge "br0" (address <prefix>254/24) and n member namespaces, each
// joined to it by a veth ("eth0" inside, "vm<i>" on the hub) with address <prefix><i+1>/24.
class Star {
 public:
  explicit Star(int n, std::string prefix = "10.214.0.");
  ~Star();
  Star(const Star&) = delete;
  Star& operator=(const Star&) = delete;
  int hub() const { return hub_; }
  int member(int i) const { return members_[i]; }
  int size() const { return static_cast<int>(members_.size()); }
  std::string addr(int i) const { return prefix_ + std::to_string(i + 1); }
  std::string hub_addr() const { return prefix_ + "254"; }

 private:
  std::string prefix_;
  int hub_ = -1;
  std::vector<int> members_;
};

// True if a TCP connect to ip:port completes within the timeout (from the calling thread's
// namespace).
// (IPv4 or IPv6 `ip`.)
bool CanConnectTo(const std::string& ip, uint16_t port, int timeout_ms = 400);

// Servers in namespace b, on kAddrB and kAddrB6: UDP echo, TCP listeners that accept and read,
// counting bytes. `fifo_priority` > 0 serves at SCHED_FIFO: a bench that times round trips under
// CPU stress measures the fault, not how long an ordinary echo server waits for a CPU.
class PeerServers {
 public:
  explicit PeerServers(int ns_fd, int fifo_priority = 0);
  ~PeerServers();
  int64_t sunk() const { return sunk_; }
  // UDP datagrams with a bad checksum seen in b (/proc/net/snmp InCsumErrors).
  int64_t udp_csum_errors() const { return csum_errors_; }
  int64_t ReadCsumErrors();

 private:
  int ns_;
  std::thread thread_;
  std::atomic<bool> ready_{false}, stop_{false};
  std::atomic<int64_t> sunk_{0}, csum_errors_{0};
  std::atomic<int> want_csum_{0};
};

double Percentile(std::vector<double> v, double q);
// Sequential UDP echo round trips to b (at `to`: kAddrB or kAddrB6) in ms (lost probes skipped).
std::vector<double> EchoRtts(int n, int timeout_ms = 500, const char* to = kAddrB);
// Sends n numbered datagrams `gap_us` apart and returns the echoes in arrival order.
std::vector<uint32_t> EchoSequence(int n, int gap_us = 100, int settle_ms = 300);
// Distinct echoes out of n.
int EchoesOf(int n);
// True if a TCP connect to b:port completes within the timeout.
bool CanConnect(uint16_t port, int timeout_ms = 400);

}  // namespace faultline::faults::net::testing
