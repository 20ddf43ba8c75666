// Network fault benchmarks, every figure against a baseline taken in the same run, inside
// private namespaces (net_lab.h):
//  1. apply, revert and the pair of a full redirect tree (IFB + root qdisc + clsact + exemption
//     and redirect u32 filters) through the fault factory over netlink, with the IFB from an
//     IfbPool and with one created and deleted per fault, vs the same tree built by `ip`/`tc`
//     commands, one process per command and with `tc -batch`, each both with a fresh IFB and
//     with one kept and reset (what the pool does, in commands). tbf stands in for netem when
//     the kernel has no sch_netem (the tree is otherwise identical).
//  2. NFQUEUE backend: UDP packets/s through the queue at 0 and 10 ms hold vs no queue, and the
//     error of the delay (echo RTT minus baseline minus configured) at p50 and p99.
// Usage: net_bench [iterations [tree]]   (root; "tree": the first part only)
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
#include "faults/net/ifb_pool.h"
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
// What the pool does, in commands, on an IFB kept from one fault to the next ("flbkept"):
// apply without the `ip link add`, revert resets instead of deleting.
const char* kTcKeptReset[] = {
    "ip link set flbkept down",
    "tc qdisc del dev flbkept root",
};

std::string Kept(std::string cmd) {
  for (size_t at; (at = cmd.find("flbbench")) != std::string::npos;) cmd.replace(at, 8, "flbkept");
  return cmd;
}

void WriteBatch(const char* path, const std::vector<std::string>& lines) {
  std::ofstream b(path);
  for (const auto& l : lines) b << l.substr(3) << "\n";  // "tc " off
}

// Apply, revert and their sum, one sample per iteration.
struct Timing {
  std::vector<double> apply, revert, pair;
  void Add(Clock::time_point t0, Clock::time_point t1, Clock::time_point t2) {
    apply.push_back(Ms(t1 - t0));
    revert.push_back(Ms(t2 - t1));
    pair.push_back(Ms(t2 - t0));
  }
  double A() const { return Percentile(apply, 0.5); }
  double R() const { return Percentile(revert, 0.5); }
  double P() const { return Percentile(pair, 0.5); }
};

void TreeBench(int iterations) {
  Lab lab;
  InNetns in(lab.a());
  NetOptions opts;
  opts.exempt_ports = {kExemptPort};
  opts.capabilities = ProbeKernel();
  const bool netem = opts.capabilities->at("netem").first;
  IfbPool pool(4);
  pool.Fill();  // ahead, as the agent does at start
  Registry plain, pooled;
  RegisterNetFaults(plain, opts);
  RegisterNetFaults(pooled, opts, &pool);
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
  const char* apply_batch = "/tmp/fl-net-bench-apply";
  const char* revert_batch = "/tmp/fl-net-bench-revert";
  const char* kept_apply_batch = "/tmp/fl-net-bench-kept-apply";
  const char* kept_revert_batch = "/tmp/fl-net-bench-kept-revert";
  {
    std::vector<std::string> a(std::begin(kTcApply) + 2, std::end(kTcApply));
    std::vector<std::string> r(std::begin(kTcRevert), std::begin(kTcRevert) + 3);
    WriteBatch(apply_batch, a);
    WriteBatch(revert_batch, r);
    std::vector<std::string> ka, kr;
    for (auto& l : a) ka.push_back(Kept(l));
    for (auto& l : r) kr.push_back(l);
    kr.push_back(kTcKeptReset[1]);
    WriteBatch(kept_apply_batch, ka);
    WriteBatch(kept_revert_batch, kr);
  }
  Sh("ip link add flbkept type ifb");
  Timing ours_plain, ours_pooled, cmds, batch, kept_cmds, kept_batch;
  auto run_ours = [&](Registry& reg, Timing& t) {
    auto t0 = Clock::now();
    auto fault = reg.Create(spec, ctx);
    fault->Prepare();
    fault->Apply();
    auto t1 = Clock::now();
    fault->Revert();
    t.Add(t0, t1, Clock::now());
  };
  auto sh_all = [](const std::vector<std::string>& cs) {
    for (const auto& c : cs)
      if (Sh(c) != 0) std::fprintf(stderr, "failed: %s\n", c.c_str());
  };
  for (int i = 0; i < iterations; ++i) {
    // Interleaved, so every variant sees the same load on average.
    run_ours(plain, ours_plain);
    run_ours(pooled, ours_pooled);

    auto t0 = Clock::now();
    sh_all({std::begin(kTcApply), std::end(kTcApply)});
    auto t1 = Clock::now();
    sh_all({std::begin(kTcRevert), std::end(kTcRevert)});
    cmds.Add(t0, t1, Clock::now());

    t0 = Clock::now();
    sh_all({kTcApply[0], kTcApply[1], std::string("tc -batch ") + apply_batch});
    t1 = Clock::now();
    sh_all({std::string("tc -batch ") + revert_batch, kTcRevert[3]});
    batch.Add(t0, t1, Clock::now());

    // The pool's equivalent in commands: the IFB exists already and is reset, not deleted.
    std::vector<std::string> apply, revert;
    for (size_t k = 1; k < std::size(kTcApply); ++k) apply.push_back(Kept(kTcApply[k]));
    for (size_t k = 0; k < 3; ++k) revert.push_back(kTcRevert[k]);
    for (const char* c : kTcKeptReset) revert.push_back(c);
    t0 = Clock::now();
    sh_all(apply);
    t1 = Clock::now();
    sh_all(revert);
    kept_cmds.Add(t0, t1, Clock::now());

    t0 = Clock::now();
    sh_all({Kept(kTcApply[1]), std::string("tc -batch ") + kept_apply_batch});
    t1 = Clock::now();
    sh_all({std::string("tc -batch ") + kept_revert_batch, kTcKeptReset[0]});
    kept_batch.Add(t0, t1, Clock::now());
  }
  Sh("ip link del flbkept");
  for (const char* p : {apply_batch, revert_batch, kept_apply_batch, kept_revert_batch}) unlink(p);
  double load[3] = {};
  getloadavg(load, 3);
  std::printf(
      "tree (%s root on IFB, 6 u32 filters, clsact on va), %d iterations interleaved, "
      "median ms, load average %.1f:\n",
      netem ? "netem" : "tbf", iterations, load[0]);
  std::printf("| | apply | revert | apply + revert |\n|---|---|---|---|\n");
  auto row = [&](const char* name, const Timing& t) {
    std::printf("| %s | %.3f | %.3f | %.3f |\n", name, t.A(), t.R(), t.P());
  };
  row("faultline, pooled IFB (netlink)", ours_pooled);
  row("faultline, own IFB per fault (netlink)", ours_plain);
  row("`ip`/`tc`, one process per command (10 + 4)", cmds);
  row("`ip` + `tc -batch` (3 + 2 processes)", batch);
  row("`ip`/`tc` on a kept IFB, one process per command (9 + 5)", kept_cmds);
  row("`ip` + `tc -batch` on a kept IFB (2 + 2 processes)", kept_batch);
  std::printf("\nhow many times faster faultline pooled is (baseline median / pooled median):\n");
  std::printf("| baseline | apply | revert | apply + revert |\n|---|---|---|---|\n");
  auto ratio = [&](const char* name, const Timing& t) {
    std::printf("| %s | %.1fx | %.1fx | %.1fx |\n", name, t.A() / ours_pooled.A(),
                t.R() / ours_pooled.R(), t.P() / ours_pooled.P());
  };
  ratio("faultline, own IFB per fault", ours_plain);
  ratio("`ip`/`tc` per command", cmds);
  ratio("`ip` + `tc -batch`", batch);
  ratio("`ip`/`tc` per command, kept IFB", kept_cmds);
  ratio("`ip` + `tc -batch`, kept IFB", kept_batch);
  std::printf(
      "\nfaultline without the pool vs `ip`/`tc` per command: %.1fx apply, %.1fx revert, "
      "%.1fx pair; vs `tc -batch`: %.1fx pair\n",
      cmds.A() / ours_plain.A(), cmds.R() / ours_plain.R(), cmds.P() / ours_plain.P(),
      batch.P() / ours_plain.P());
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
  if (argc > 2 && std::string(argv[2]) == "tree") return 0;
  QueueBench();
  return 0;
}
