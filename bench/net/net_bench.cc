// Network fault benchmarks, every figure against a baseline taken in the same run, inside
// private namespaces (net_lab.h):
//  1. apply+revert of a full redirect tree (IFB + root qdisc + clsact + exemption and redirect
//     u32 filters) through the fault factory over netlink, vs the same tree built by `ip`/`tc`
//     commands, one process per command and with `tc -batch`. tbf stands in for netem when
//     the kernel has no sch_netem (the tree is otherwise identical).
//  2. NFQUEUE backend: UDP packets/s through the queue at 0 and 10 ms hold vs no queue, and the
//     error of the delay (echo RTT minus baseline minus configured) at p50 and p99.
// Usage: net_bench [iterations]   (root)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "faults/core/duration.h"
#include "faults/net/net_faults.h"
#include "faults/net/nfqueue.h"
#include "faults/net/nft.h"
#include "faults/net/probe.h"
#include "net_lab.h"

using namespace faultline::faults;
using namespace faultline::faults::net;
using namespace faultline::faults::net::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using faultline::v1::NetFault;

namespace {

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

int Sh(const std::string& cmd) { return system((cmd + " >/dev/null 2>&1").c_str()); }

const char* kTcApply[] = {
    "ip link add flbbench type ifb",
    "ip link set flbbench up",
    "tc qdisc replace dev flbbench root handle 1: tbf rate 1mbit burst 4500 limit 17000",
    "tc qdisc add dev va clsact",
    "tc filter add dev va egress prio 64000 protocol ip u32 match ip protocol 6 0xff match ip "
    "sport 7102 0xffff classid 1:1",
    "tc filter add dev va egress prio 64000 protocol ip u32 match ip protocol 6 0xff match ip "
    "dport 7102 0xffff classid 1:1",
    "tc filter add dev va egress prio 64000 protocol ip u32 match ip protocol 17 0xff match ip "
    "sport 7102 0xffff classid 1:1",
    "tc filter add dev va egress prio 64000 protocol ip u32 match ip protocol 17 0xff match ip "
    "dport 7102 0xffff classid 1:1",
    "tc filter add dev va egress prio 64001 protocol ip u32 match ip dst 10.213.0.2/32 match ip "
    "protocol 17 0xff match ip sport 7100 0xffff action mirred egress redirect dev flbbench",
    "tc filter add dev va egress prio 64001 protocol ip u32 match ip dst 10.213.0.2/32 match ip "
    "protocol 17 0xff match ip dport 7100 0xffff action mirred egress redirect dev flbbench",
};
const char* kTcRevert[] = {
    "tc filter del dev va egress prio 64000 protocol ip",
    "tc filter del dev va egress prio 64001 protocol ip",
    "tc qdisc del dev va clsact",
    "ip link del flbbench",
};

void TreeBench(int iterations) {
  Lab lab;
  InNetns in(lab.a());
  NetOptions opts;
  opts.exempt_ports = {kExemptPort};
  opts.capabilities = ProbeKernel();
  const bool netem = opts.capabilities->at("netem").first;
  Registry reg;
  RegisterNetFaults(reg, opts);
  faultline::v1::FaultSpec spec;
  NetFault* f = spec.mutable_net();
  f->set_backend(NetFault::NETEM);
  f->set_device("va");
  f->add_to("10.213.0.2/32");
  f->set_protocol(NetFault::UDP);
  f->add_ports("7100");
  if (netem) {
    f->set_action(NetFault::DELAY);
    ToProto(100ms, f->mutable_delay());
  } else {
    f->set_action(NetFault::BANDWIDTH);
    f->set_rate("1mbit");
  }
  FaultContext ctx;
  std::vector<double> nl, cmds, batch, prep, apply, revert, cmd_apply;
  for (int i = 0; i < iterations; ++i) {
    auto t0 = Clock::now();
    auto fault = reg.Create(spec, ctx);
    fault->Prepare();
    auto t1 = Clock::now();
    fault->Apply();
    auto t2 = Clock::now();
    fault->Revert();
    nl.push_back(Ms(Clock::now() - t0));
    prep.push_back(Ms(t1 - t0));
    apply.push_back(Ms(t2 - t1));
    revert.push_back(Ms(Clock::now() - t2));

    t0 = Clock::now();
    for (const char* c : kTcApply)
      if (Sh(c) != 0) std::fprintf(stderr, "failed: %s\n", c);
    t1 = Clock::now();
    for (const char* c : kTcRevert) Sh(c);
    cmds.push_back(Ms(Clock::now() - t0));
    cmd_apply.push_back(Ms(t1 - t0));

    // tc -batch: one tc process for all tc lines, plus the two ip commands each way.
    t0 = Clock::now();
    Sh(kTcApply[0]);
    Sh(kTcApply[1]);
    {
      std::ofstream b("/tmp/fl-net-bench-batch");
      for (size_t k = 2; k < std::size(kTcApply); ++k) b << (kTcApply[k] + 3) << "\n";
      for (size_t k = 0; k < 3; ++k) b << (kTcRevert[k] + 3) << "\n";
    }
    Sh("tc -batch /tmp/fl-net-bench-batch");
    Sh(kTcRevert[3]);
    batch.push_back(Ms(Clock::now() - t0));
  }
  unlink("/tmp/fl-net-bench-batch");
  const double n = Percentile(nl, 0.5), c = Percentile(cmds, 0.5), b = Percentile(batch, 0.5);
  std::printf("tree (%s root on IFB, 6 u32 filters, clsact), %d iterations, median ms:\n",
              netem ? "netem" : "tbf", iterations);
  std::printf(
      "  netlink (factory Prepare+Apply+Revert) %8.3f ms  (prepare %.3f, apply %.3f, "
      "revert %.3f)\n",
      n, Percentile(prep, 0.5), Percentile(apply, 0.5), Percentile(revert, 0.5));
  std::printf(
      "  ip/tc, one process per command         %8.3f ms  (netlink %.1fx faster; apply "
      "alone %.3f ms vs %.3f ms: %.1fx)\n",
      c, c / n, Percentile(cmd_apply, 0.5), Percentile(prep, 0.5) + Percentile(apply, 0.5),
      Percentile(cmd_apply, 0.5) / (Percentile(prep, 0.5) + Percentile(apply, 0.5)));
  std::printf("  ip + tc -batch                         %8.3f ms  (netlink %.1fx faster)\n", b,
              b / n);
}

// UDP flood a->b for `secs`; returns datagrams/s the sink in b received.
double Flood(const Lab& lab, double secs) {
  std::atomic<bool> stop{false}, ready{false};
  std::atomic<int64_t> got{0};
  std::thread sink([&] {
    InNetns in(lab.b());
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rcv = 8 << 20;
    setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(7200);
    inet_pton(AF_INET, kAddrB, &a.sin_addr);
    bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ready = true;
    char buf[2048];
    while (!stop) {
      pollfd p{s, POLLIN, 0};
      if (poll(&p, 1, 20) == 1)
        while (recv(s, buf, sizeof buf, MSG_DONTWAIT) > 0) got++;
    }
    close(s);
  });
  while (!ready) std::this_thread::sleep_for(1ms);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  // Held packets count against the sender's buffer: without room for a delay's worth of
  // packets the sender, not the queue, sets the rate.
  int snd = 64 << 20;
  setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(7200);
  inet_pton(AF_INET, kAddrB, &to.sin_addr);
  connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to);
  char payload[64] = {};
  auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration<double>(secs);
  while (Clock::now() < end) {
    for (int i = 0; i < 64; ++i) send(s, payload, sizeof payload, 0);
  }
  const int64_t at_end = got;
  std::this_thread::sleep_for(100ms);  // let held packets arrive; counted separately below
  stop = true;
  sink.join();
  close(s);
  (void)at_end;
  return static_cast<double>(got) / secs;
}

void QueueBench() {
  Lab lab;
  PeerServers servers(lab.b());
  InNetns in(lab.a());
  const double base_pps = Flood(lab, 2.0);
  std::printf("nfqueue throughput, 64-byte UDP a->b, 2 s flood:\n");
  std::printf("  no queue            %10.0f pkt/s\n", base_pps);
  for (int hold_ms : {0, 10}) {
    QueueBehaviour b;
    b.delay = std::chrono::milliseconds(hold_ms);
    PacketQueue q(31000, 31999, b);
    q.Start();
    NftPlan plan;
    plan.match.to = {*ParseCidr("10.213.0.2")};
    plan.match.protocol = NetFault::UDP;
    plan.verdict = NftPlan::Verdict::kQueue;
    plan.queue = q.queue_num();
    NftCreateTable("faultline_bench", plan);
    const double pps = Flood(lab, 2.0);
    NftDeleteTable("faultline_bench");
    q.Stop();
    auto st = q.stats();
    std::printf(
        "  queue, hold %2d ms   %10.0f pkt/s delivered (%.2fx of no queue); queued %lld, "
        "batch verdicts %lld of %lld verdict messages, max held %lld, overruns %lld\n",
        hold_ms, pps, pps / base_pps, static_cast<long long>(st.received),
        static_cast<long long>(st.batch_verdicts), static_cast<long long>(st.verdict_msgs),
        static_cast<long long>(st.held_max), static_cast<long long>(st.overruns));
  }
  // Accuracy: sequential echo probes, egress hold 10 ms.
  const double base = Percentile(EchoRtts(300), 0.5);
  QueueBehaviour b;
  b.delay = 10ms;
  PacketQueue q(31000, 31999, b);
  q.Start();
  NftPlan plan;
  plan.match.to = {*ParseCidr("10.213.0.2")};
  plan.match.protocol = NetFault::UDP;
  plan.verdict = NftPlan::Verdict::kQueue;
  plan.queue = q.queue_num();
  NftCreateTable("faultline_bench", plan);
  auto rtts = EchoRtts(1000);
  NftDeleteTable("faultline_bench");
  q.Stop();
  std::vector<double> err;
  for (double r : rtts) err.push_back(r - base - 10.0);
  std::printf("nfqueue delay 10 ms, %zu echo probes (baseline RTT p50 %.3f ms):\n", rtts.size(),
              base);
  std::printf("  error p50 %+.3f ms, p99 %+.3f ms, max %+.3f ms\n", Percentile(err, 0.5),
              Percentile(err, 0.99), Percentile(err, 1.0));
}

}  // namespace

int main(int argc, char** argv) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "net_bench needs root (namespaces, netlink)\n");
    return 2;
  }
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 30;
  TreeBench(iterations);
  QueueBench();
  return 0;
}
