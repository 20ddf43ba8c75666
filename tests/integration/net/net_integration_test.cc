// Network faults on this kernel, inside two network namespaces the test creates ("a" runs the
// fault, "b" is the peer; see net_lab.h), joined by a veth pair. Every effect is measured from
// outside the fault code: UDP echo round trips, a TCP transfer, TCP connects.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string_view>
#include <thread>

#include "faults/core/duration.h"
#include "faults/net/net_faults.h"
#include "faults/net/nft.h"
#include "faults/net/probe.h"
#include "faults/net/tc.h"
#include "faults/sys/command.h"
#include "net_lab.h"
#include "net_lab_fixture.h"
#include "tests/support/thread_sched.h"

namespace faultline::faults::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using v1::NetFault;

using namespace testing;

// Egress delay of the UDP echo probes (a -> b, echo port).
NetFault EchoDelay(std::chrono::nanoseconds delay) {
  NetFault f;
  f.set_action(NetFault::DELAY);
  ToProto(delay, f.mutable_delay());
  f.add_to(std::string(kAddrB) + "/32");
  f.set_protocol(NetFault::UDP);
  f.add_ports(std::to_string(kEchoPort));
  f.set_direction(NetFault::EGRESS);
  return f;
}

class NetIntegration : public NetLabTest {
 protected:
  void SetUp() override {
    NetLabTest::SetUp();
    if (IsSkipped()) return;
    NetOptions opts;
    opts.exempt_ports = {kExemptPort};
    opts.exempt_cidrs = {*ParseCidr("10.213.0.200")};  // a "controller" that must stay reachable
    opts.capabilities = *caps_;
    RegisterNetFaults(registry_, opts);
  }
  void TearDown() override {
    faults_.clear();
    NetLabTest::TearDown();
  }

  Fault& Inject(const NetFault& nf, std::chrono::nanoseconds duration = 0s) {
    v1::FaultSpec spec;
    *spec.mutable_net() = nf;
    spec.set_seed(42);
    ToProto(duration, spec.mutable_duration());
    faults_.emplace_back(registry_.Create(spec, ctx_).release());
    Fault& f = *faults_.back();
    f.Prepare();
    f.Apply();
    return f;
  }
  const FaultFactory& factory() { return *registry_.Find("net"); }

  Registry registry_;
  FaultContext ctx_;
  struct Reverter {
    void operator()(Fault* f) const {
      try {
        f->Revert();
      } catch (...) {
      }
      delete f;
    }
  };
  std::vector<std::unique_ptr<Fault, Reverter>> faults_;
};

TEST_F(NetIntegration, ProbeReportsThisKernel) {
  for (auto& [name, v] : *caps_)
    std::printf("probe %-8s %s %s\n", name.c_str(), v.first ? "yes" : "no ", v.second.c_str());
  EXPECT_TRUE(caps_->at("nftables").first) << caps_->at("nftables").second;
  EXPECT_TRUE(caps_->at("nfqueue").first) << caps_->at("nfqueue").second;
  EXPECT_TRUE(caps_->at("ifb").first) << caps_->at("ifb").second;
  EXPECT_TRUE(caps_->at("tbf").first) << caps_->at("tbf").second;
  EXPECT_TRUE(caps_->at("clsact").first) << caps_->at("clsact").second;
  EXPECT_TRUE(caps_->at("u32").first) << caps_->at("u32").second;
  EXPECT_TRUE(caps_->at("mirred").first) << caps_->at("mirred").second;
  // This machine's kernel has no sch_netem: the probe must say so, not guess.
  EXPECT_FALSE(caps_->at("netem").first);
}

TEST_F(NetIntegration, NfqueueDelayMeasuredFromOutside) {
  const double base = Percentile(EchoRtts(200), 0.5);
  NetFault f = EchoDelay(10ms);
  Fault& fault = Inject(f);
  EXPECT_NE(fault.Describe().find("nfqueue"), std::string::npos) << fault.Describe();
  auto rtts = EchoRtts(200);
  ASSERT_GE(rtts.size(), 190u);
  const double p50 = Percentile(rtts, 0.5), p99 = Percentile(rtts, 0.99);
  std::printf("baseline p50 %.3f ms, delayed p50 %.3f ms p99 %.3f ms\n", base, p50, p99);
  EXPECT_NEAR(p50 - base, 10.0, 2.0);
  auto c = fault.Observe();
  EXPECT_GE(c["queued"], 200);
  EXPECT_GE(c["matched_packets"], 200);
  fault.Revert();
  EXPECT_LT(Percentile(EchoRtts(100), 0.5), base + 2.0);
  // The table and the queue are gone; the run's final report still gets what they counted.
  auto after = fault.Observe();
  EXPECT_GE(after["matched_packets"], c["matched_packets"]);
  EXPECT_GE(after["released"], c["released"]);
}

// The NFQUEUE release thread runs SCHED_FIFO (seen from /proc), and the fault's accuracy
// counters agree with the echo client: a held packet cannot be released later than its echo
// came back, so the fault's lateness is bounded by the client's round trip beyond the delay.
TEST_F(NetIntegration, NfqueueReleaseIsRealtimeAndCountsItsLateness) {
  NetFault f = EchoDelay(10ms);
  Fault& fault = Inject(f);
  auto threads = faultline::testing::ThreadsNamed(getpid(), "fl-net-release");
  ASSERT_EQ(threads.size(), 1u);
  EXPECT_EQ(threads[0].policy, SCHED_FIFO);
  EXPECT_EQ(threads[0].rt_priority, 10);
  auto rtts = EchoRtts(150);
  ASSERT_GE(rtts.size(), 140u);
  std::vector<double> excess;
  for (double r : rtts) excess.push_back(r - 10.0);
  std::sort(excess.begin(), excess.end());
  auto rank = [&](double q) {
    return excess[std::min(excess.size() - 1,
                           static_cast<size_t>(std::ceil(q * double(excess.size()))) - 1)];
  };
  auto c = fault.Observe();
  EXPECT_EQ(c["late_samples"], c["queued"]);
  EXPECT_EQ(c["late_samples"], static_cast<int64_t>(rtts.size()));
  EXPECT_EQ(c["release_realtime"], 1);
  EXPECT_LE(c["late_p50_us"] / 1000.0, rank(0.5) * 1.04 + 0.05);
  EXPECT_LE(c["late_p99_us"] / 1000.0, rank(0.99) * 1.04 + 0.05);
  EXPECT_LE(c["late_max_us"] / 1000.0, excess.back() + 0.05);
  std::printf("echo excess p50 %.3f p99 %.3f max %.3f ms; fault late p50 %.3f p99 %.3f max %.3f\n",
              rank(0.5), rank(0.99), excess.back(), c["late_p50_us"] / 1000.0,
              c["late_p99_us"] / 1000.0, c["late_max_us"] / 1000.0);
  const std::string d = fault.Describe();
  EXPECT_NE(d.find(" released, late p50 "), std::string::npos) << d;
  EXPECT_NE(d.find("release thread SCHED_FIFO 10"), std::string::npos) << d;
  EXPECT_TRUE(factory().Probe().at("realtime_release").first);
}

TEST_F(NetIntegration, DelayBothWaysWithJitter) {
  const double base = Percentile(EchoRtts(100), 0.5);
  NetFault f;
  f.set_action(NetFault::DELAY);
  ToProto(5ms, f.mutable_delay());
  ToProto(2ms, f.mutable_jitter());
  f.add_to(std::string(kAddrB) + "/32");
  f.set_direction(NetFault::BOTH);
  Inject(f);
  auto rtts = EchoRtts(200);
  const double p50 = Percentile(rtts, 0.5);
  std::printf("both ways 5ms±2ms: p50 %.3f ms (base %.3f)\n", p50, base);
  EXPECT_NEAR(p50 - base, 10.0, 2.0);
  EXPECT_GT(Percentile(rtts, 0.95) - Percentile(rtts, 0.05), 1.0);  // jitter spreads them
}

TEST_F(NetIntegration, NfqueueLossThirtyPercent) {
  NetFault f;
  f.set_action(NetFault::LOSS);
  f.set_percent(30);
  f.set_backend(NetFault::NFQUEUE);
  f.add_to(std::string(kAddrB) + "/32");
  Fault& fault = Inject(f);
  const int n = 2000, got = EchoesOf(n);
  const double loss = 100.0 * (n - got) / n;
  std::printf("nfqueue loss: %d of %d echoed, %.1f%% lost\n", got, n, loss);
  EXPECT_NEAR(loss, 30.0, 4.0);
  EXPECT_NEAR(fault.Observe()["dropped"], n * 0.3, n * 0.04);
}

TEST_F(NetIntegration, NftablesLossThirtyPercent) {
  NetFault f;
  f.set_action(NetFault::LOSS);
  f.set_percent(30);
  f.add_to(std::string(kAddrB) + "/32");
  Fault& fault = Inject(f);
  EXPECT_NE(fault.Describe().find("nftables"), std::string::npos);
  const int n = 2000, got = EchoesOf(n);
  const double loss = 100.0 * (n - got) / n;
  std::printf("nftables loss: %d of %d echoed, %.1f%% lost\n", got, n, loss);
  EXPECT_NEAR(loss, 30.0, 4.0);
}

TEST_F(NetIntegration, PartitionBlocksTcpAndHealRestores) {
  ASSERT_TRUE(CanConnect(kTcpPort, 2500));
  NetFault f;
  f.set_action(NetFault::PARTITION);
  f.add_to(std::string(kAddrB) + "/32");
  f.set_direction(NetFault::BOTH);
  Fault& fault = Inject(f);
  EXPECT_FALSE(CanConnect(kTcpPort));
  // The agent's own port is exempt and keeps working through the partition.
  EXPECT_TRUE(CanConnect(kExemptPort, 2500));
  const int64_t matched = fault.Observe()["matched_packets"];
  EXPECT_GT(matched, 0);
  fault.Revert();
  EXPECT_TRUE(CanConnect(kTcpPort, 2500));
  fault.Revert();  // idempotent
  EXPECT_GE(fault.Observe()["matched_packets"], matched) << "the count died with the table";
}

TEST_F(NetIntegration, PartitionOnNamedDevice) {
  NetFault f;
  f.set_action(NetFault::PARTITION);
  f.set_device("nosuch0");
  v1::FaultSpec spec;
  *spec.mutable_net() = f;
  auto missing = registry_.Create(spec, ctx_);
  EXPECT_THROW(missing->Prepare(), FaultError);
  f.set_device("lo");  // a device the traffic to b does not use: no effect
  Fault& on_lo = Inject(f);
  EXPECT_TRUE(CanConnect(kTcpPort, 2500));
  on_lo.Revert();
  f.set_device("va");
  Inject(f);
  EXPECT_FALSE(CanConnect(kTcpPort));
}

TEST_F(NetIntegration, OneWayPartitionIngressOnly) {
  NetFault f;
  f.set_action(NetFault::PARTITION);
  f.add_to(std::string(kAddrB) + "/32");
  f.set_direction(NetFault::INGRESS);
  f.set_protocol(NetFault::UDP);
  Inject(f);
  // Datagrams still leave a (b receives them) but echoes never come back.
  EXPECT_EQ(EchoesOf(50), 0);
  EXPECT_TRUE(CanConnect(kTcpPort, 2500));  // TCP is not targeted
}

// What a TCP stream to b's sink port at `ip` delivers in 2 s, in Mbit/s as b counted it.
double SinkMbit(PeerServers& servers, const char* ip) {
  const bool v6 = std::string_view(ip).find(':') != std::string_view::npos;
  int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6) {
    auto* to = reinterpret_cast<sockaddr_in6*>(&ss);
    to->sin6_family = AF_INET6;
    to->sin6_port = htons(kSinkPort);
    inet_pton(AF_INET6, ip, &to->sin6_addr);
    len = sizeof *to;
  } else {
    auto* to = reinterpret_cast<sockaddr_in*>(&ss);
    to->sin_family = AF_INET;
    to->sin_port = htons(kSinkPort);
    inet_pton(AF_INET, ip, &to->sin_addr);
    len = sizeof *to;
  }
  if (connect(s, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(s);
    return -1;
  }
  const int64_t before = servers.sunk();
  std::vector<char> chunk(16384, 'x');
  auto t0 = Clock::now();
  int64_t sent = 0;
  while (Clock::now() - t0 < 2s) {
    ssize_t n = send(s, chunk.data(), chunk.size(), MSG_DONTWAIT);
    if (n > 0) sent += n;
    std::this_thread::sleep_for(1ms);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double mbit = (servers.sunk() - before) * 8 / secs / 1e6;
  close(s);
  std::printf("to %s: %.3f mbit/s received over %.2f s (offered %.1f mbit/s)\n", ip, mbit, secs,
              sent * 8 / secs / 1e6);
  return mbit;
}

TEST_F(NetIntegration, BandwidthOneMbitByTbfOnIfb) {
  NetFault f;
  f.set_action(NetFault::BANDWIDTH);
  f.set_rate("1mbit");
  f.add_to(std::string(kAddrB) + "/32");
  f.set_device("va");
  Fault& fault = Inject(f);
  EXPECT_NE(fault.Describe().find("netem"), std::string::npos) << fault.Describe();
  EXPECT_NEAR(SinkMbit(*servers_, kAddrB), 1.0, 0.2);
  auto c = fault.Observe();
  EXPECT_GT(c["qdisc_packets"], 100);  // the tbf on the IFB saw the transfer
  fault.Revert();
  Rtnl nl;
  EXPECT_EQ(nl.IfIndex("flb"), 0);
}

// ---- IPv6 (issue 18): the same faults on the dual-stack veth, measured from outside -------

// `ping -6` from a (an independent observer: iputils, not faultline) to b: each reply's RTT in
// ms, empty if no ping is installed or no reply came back. Judged by the median: one reply the
// host stalls for tens of ms moves an average of 20 by several ms (seen once with the fault's own
// account showing every packet released on time), not the median.
std::vector<double> Ping6Rtts(int count) {
  if (::access("/usr/bin/ping", X_OK) != 0) return {};
  // The child inherits this thread's network namespace (a).
  auto r = sys::RunCommand(
      {"/usr/bin/ping", "-6", "-n", "-c", std::to_string(count), "-i", "0.02", "-W", "1", kAddrB6},
      30s);
  // "64 bytes from fd00:fa17:ffff::2: icmp_seq=1 ttl=64 time=20.3 ms"
  std::vector<double> out;
  for (size_t at = r.out.find("time="); at != std::string::npos; at = r.out.find("time=", at + 5)) {
    out.push_back(std::stod(r.out.substr(at + 5)));
  }
  return out;
}

TEST_F(NetIntegration, Ipv6DelayByNfqueueMeasuredByPingAndEcho) {
  const double base6 = Percentile(EchoRtts(100, 500, kAddrB6), 0.5);
  ASSERT_GT(base6, 0) << "no IPv6 echo from b before any fault";
  const auto ping_base_rtts = Ping6Rtts(20);
  const double ping_base = ping_base_rtts.empty() ? -1 : Percentile(ping_base_rtts, 0.5);
  NetFault f;
  f.set_action(NetFault::DELAY);
  ToProto(20ms, f.mutable_delay());
  f.add_to(std::string(kAddrB6) + "/128");
  f.set_direction(NetFault::EGRESS);
  Fault& fault = Inject(f);
  EXPECT_NE(fault.Describe().find("to fd00:fa17:ffff::2/128"), std::string::npos)
      << fault.Describe();
  EXPECT_NE(fault.Describe().find("nfqueue"), std::string::npos) << fault.Describe();
  auto rtts = EchoRtts(100, 500, kAddrB6);
  ASSERT_GE(rtts.size(), 95u);
  const double p50 = Percentile(rtts, 0.5);
  // The IPv4 address of the same peer is not a target.
  const double v4 = Percentile(EchoRtts(50), 0.5);
  const auto ping_rtts = Ping6Rtts(20);
  const double ping = ping_rtts.empty() ? -1 : Percentile(ping_rtts, 0.5);
  // The fault's own account (release lateness, release thread policy): if the probes saw more
  // than the delay, it tells a late release (faultline) from a stalled host or probe. Once in 13
  // full runs p50 read +24 ms with both probes shifted alike.
  std::printf(
      "IPv6 echo p50 %.3f -> %.3f ms (p99 %.3f); ping -6 p50 %.3f -> %.3f ms (%zu replies, "
      "max %.3f); IPv4 echo %.3f ms; fault: %s\n",
      base6, p50, Percentile(rtts, 0.99), ping_base, ping, ping_rtts.size(),
      ping_rtts.empty() ? -1.0 : *std::max_element(ping_rtts.begin(), ping_rtts.end()), v4,
      fault.Describe().c_str());
  EXPECT_NEAR(p50 - base6, 20.0, 3.0);
  EXPECT_LT(v4, base6 + 3.0);
  if (ping_base >= 0) {
    EXPECT_NEAR(ping - ping_base, 20.0, 3.0);
  } else {
    std::printf("no /usr/bin/ping: the ping -6 check is skipped\n");
  }
  EXPECT_GE(fault.Observe()["queued"], 100);
  fault.Revert();
  EXPECT_LT(Percentile(EchoRtts(50, 500, kAddrB6), 0.5), base6 + 3.0);
}

TEST_F(NetIntegration, Ipv6PartitionLeavesIpv4AndExemptPortAlone) {
  ASSERT_TRUE(CanConnectTo(kAddrB6, kTcpPort, 2500));
  NetFault f;
  f.set_action(NetFault::PARTITION);
  f.add_to("fd00:fa17:ffff::/64");
  f.set_direction(NetFault::BOTH);
  Fault& fault = Inject(f);
  EXPECT_FALSE(CanConnectTo(kAddrB6, kTcpPort));
  EXPECT_TRUE(CanConnectTo(kAddrB6, kExemptPort, 2500));  // the agent's port, on IPv6 too
  EXPECT_TRUE(CanConnectTo(kAddrB, kTcpPort, 2500));      // IPv4 is not a target
  EXPECT_GT(fault.Observe()["matched_packets"], 0);
  fault.Revert();
  EXPECT_TRUE(CanConnectTo(kAddrB6, kTcpPort, 2500));
  // Dual-stack targets: both addresses of b at once.
  NetFault both = f;
  both.clear_to();
  both.add_to(kAddrB);
  both.add_to(kAddrB6);
  Inject(both);
  EXPECT_FALSE(CanConnectTo(kAddrB6, kTcpPort));
  EXPECT_FALSE(CanConnectTo(kAddrB, kTcpPort));
}

// The tc path: u32 filters keyed on IPv6 headers (destination, source, next header, port)
// redirect into the IFB whose tbf limits them. `from` lists both of a's addresses: dual-stack
// lists pair by family, so the IPv6 filter takes a's IPv6 address.
TEST_F(NetIntegration, Ipv6BandwidthByU32AndTbfOnIfb) {
  NetFault f;
  f.set_action(NetFault::BANDWIDTH);
  f.set_rate("1mbit");
  f.add_to(std::string(kAddrB6) + "/128");
  f.add_from(kAddrA);
  f.add_from("fd00:fa17:ffff::/64");
  f.set_protocol(NetFault::TCP);
  f.add_ports(std::to_string(kSinkPort));
  f.set_device("va");
  Fault& fault = Inject(f);
  EXPECT_NEAR(SinkMbit(*servers_, kAddrB6), 1.0, 0.2);
  EXPECT_GT(fault.Observe()["qdisc_packets"], 100);
  // The same peer over IPv4 is not shaped.
  EXPECT_GT(SinkMbit(*servers_, kAddrB), 5.0);
  fault.Revert();
  EXPECT_GT(SinkMbit(*servers_, kAddrB6), 5.0);
}

TEST_F(NetIntegration, RestoreFromJournalStateReverts) {
  NetFault f;
  f.set_action(NetFault::PARTITION);
  f.add_to(std::string(kAddrB) + "/32");
  v1::FaultSpec spec;
  *spec.mutable_net() = f;
  Fault& fault = Inject(f);
  const std::string state = fault.State();
  ASSERT_FALSE(CanConnect(kTcpPort));
  auto restored = factory().Restore(spec, state, ctx_);
  restored->Revert();
  EXPECT_TRUE(CanConnect(kTcpPort, 2500));
}

TEST_F(NetIntegration, SweepRemovesEverythingAfterCrash) {
  // Three faults applied and then abandoned without revert, as if the agent were SIGKILLed.
  NetFault part;
  part.set_action(NetFault::PARTITION);
  part.add_to(std::string(kAddrB) + "/32");
  part.set_protocol(NetFault::UDP);
  NetFault delay;
  delay.set_action(NetFault::DELAY);
  ToProto(5ms, delay.mutable_delay());
  delay.add_to(std::string(kAddrB) + "/32");
  delay.set_protocol(NetFault::TCP);
  NetFault bw;
  bw.set_action(NetFault::BANDWIDTH);
  bw.set_rate("10mbit");
  bw.set_direction(NetFault::BOTH);
  for (const NetFault* nf : {&part, &delay, &bw}) {
    v1::FaultSpec spec;
    *spec.mutable_net() = *nf;
    auto fault = registry_.Create(spec, ctx_);
    fault->Prepare();
    fault->Apply();
    // Never reverted, like a crash; kept reachable so LeakSanitizer does not count it a leak.
    static std::vector<std::unique_ptr<Fault>>* crashed = new std::vector<std::unique_ptr<Fault>>;
    crashed->push_back(std::move(fault));
  }
  auto tagged = [] {
    int n = 0;
    for (auto& t : NftListTables()) n += t.starts_with(kNftPrefix);
    Rtnl nl;
    for (auto& [index, name] : nl.Links()) {
      n += name.starts_with(kIfbPrefix);
      for (bool ingress : {false, true})
        for (uint16_t p : FilterPrios(nl, index, ingress)) n += p >= kFirstPrio && p <= kLastPrio;
    }
    return n;
  };
  ASSERT_GE(tagged(), 4);
  auto done = factory().Sweep(ctx_);
  for (auto& d : done) std::printf("sweep: %s\n", d.c_str());
  EXPECT_EQ(tagged(), 0);
  bool clsact_left = false;
  for (auto& d : done) clsact_left |= d == "deleted empty clsact on va";
  EXPECT_TRUE(clsact_left);
  EXPECT_EQ(EchoesOf(20), 20);
  EXPECT_TRUE(CanConnect(kTcpPort, 2500));
}

// A lab names its bridge and veths "fl" + a hex tag, which starts "flb" like faultline's IFBs for
// one lab name in sixteen: a sweep once deleted a running lab's bridge and veths. Only devices of
// kind ifb are the family's.
TEST_F(NetIntegration, SweepDeletesIfbsButNoOtherDeviceNamedLikeThem) {
  Rtnl nl;
  const std::string bridge = "flb0a1b2br", ifb = std::string(kIfbPrefix) + "0deadbe";
  nl.AddBridge(bridge);
  CreateIfb(nl, ifb);
  ASSERT_GT(nl.IfIndex(bridge), 0);
  ASSERT_GT(nl.IfIndex(ifb), 0);
  auto done = factory().Sweep(ctx_);
  for (auto& d : done) std::printf("sweep: %s\n", d.c_str());
  EXPECT_GT(nl.IfIndex(bridge), 0) << "the sweep deleted a bridge that is not an IFB";
  EXPECT_EQ(nl.IfIndex(ifb), 0) << "the sweep left faultline's IFB";
  nl.DeleteLink(bridge);
}

TEST_F(NetIntegration, ControllerAddressRefused) {
  NetFault f;
  f.set_action(NetFault::PARTITION);
  f.add_to("10.213.0.0/24");  // covers the exempt "controller" 10.213.0.200
  v1::FaultSpec spec;
  *spec.mutable_net() = f;
  try {
    registry_.Create(spec, ctx_);
    FAIL() << "covering the controller must be refused";
  } catch (const ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find("net.to[0]"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(NftListTables().empty());  // nothing half-applied
}

}  // namespace
}  // namespace faultline::faults::net
