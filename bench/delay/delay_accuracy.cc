// Delay accuracy under host load, in one run: for each phase (idle host, then faultline's own
// CPU stress at 100% on every core) it measures, from the caller's side,
//   - IO latency 10 ms and 100 ms on fdatasync through the overlay (real disk under --dir),
//   - NFQUEUE egress hold 10 ms (UDP echo between two private network namespaces),
// and prints the error (measured minus configured minus the no-fault baseline of the same
// phase) at p50/p99/max, next to the lateness the fault itself reports, the load average, and
// the CPU the stress workers really got (from /proc, against the 100% asked).
//
//   delay_accuracy_bench [--dir /var/tmp/x] [--io-samples 300] [--net-samples 1000]
//                        [--spin-us 0] [--probe-fifo] [--boost-stress] [--workers MODE]
//                        [--phases idle,stress]
// --probe-fifo runs the probing threads (the fdatasync caller, the echo client and the echo
// server) at SCHED_FIFO too, which takes the caller's own wake-up out of the figure: what remains
// is faultline's. Without it the caller is an ordinary task, like etcd.
// --boost-stress gives the stress workers' autogroups nice -20 from outside, so that on a host
// shared with other builds they really take 100% of every core (as asked), not a fair share.
// --workers ordinary|while-delaying|realtime: Overlay::Options::workers (default while-delaying,
// as the agent mounts it; `ordinary` measures the workers without real-time priority).
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/proc_stat.h"
#include "faults/core/registry.h"
#include "faults/io/overlay.h"
#include "faults/net/nfqueue.h"
#include "faults/net/nft.h"
#include "faults/stress/cgroup.h"
#include "faults/stress/stress_faults.h"
#include "faults/sys/realtime.h"
#include "net_lab.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace faultline::faults;
using namespace faultline::faults::net::testing;

namespace {

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string LoadAvg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

constexpr int kProbePriority = 5;  // below the release threads

void MakeFifo(bool on) {
  if (!on) return;
  sched_param p{};
  p.sched_priority = kProbePriority;
  pthread_setschedparam(pthread_self(), SCHED_FIFO, &p);
}

struct Row {
  std::string what;
  size_t n = 0;
  double p50 = 0, p99 = 0, max = 0;  // error, ms
  Lateness::Summary agent;
  std::string load;
};

void Print(const Row& r, const std::string& phase) {
  std::printf("| %s | %s | %s | %zu | %+.2f | %+.2f | %+.2f | %.2f / %.2f / %.2f |\n",
              r.what.c_str(), phase.c_str(), r.load.c_str(), r.n, r.p50, r.p99, r.max,
              static_cast<double>(r.agent.p50_ns) / 1e6, static_cast<double>(r.agent.p99_ns) / 1e6,
              static_cast<double>(r.agent.max_ns) / 1e6);
  std::fflush(stdout);
}

std::vector<Row> IoRows(const fs::path& dir, int samples, int64_t spin_ns, bool fifo,
                        io::Overlay::Options::Workers workers) {
  std::vector<Row> rows;
  io::Overlay::Options opt;
  opt.release_spin_ns = spin_ns;
  opt.workers = workers;
  io::Overlay overlay(dir, opt);
  MakeFifo(fifo);
  int fd = ::open((dir / "lat.dat").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  char buf[4096] = {};
  auto one = [&] {
    if (::pwrite(fd, buf, sizeof buf, 0) != sizeof buf) std::perror("pwrite");
    auto t0 = Clock::now();
    ::fdatasync(fd);
    return Ms(Clock::now() - t0);
  };
  std::vector<double> base;
  for (int i = 0; i < 100; ++i) base.push_back(one());
  const double base_p50 = Pct(base, 50);
  for (int delay_ms : {10, 100}) {
    io::RuleSpec s;
    s.kind = io::RuleKind::kLatency;
    s.path_glob = "lat.dat";
    s.methods = io::Bit(io::Method::kFdatasync);
    s.delay = std::chrono::milliseconds(delay_ms);
    Row r;
    r.load = LoadAvg();
    auto rule = overlay.Arm(s);
    const int n = delay_ms == 10 ? samples : std::max(20, samples / 5);
    std::vector<double> err;
    for (int i = 0; i < n; ++i) err.push_back(one() - delay_ms - base_p50);
    r.agent = rule->lateness().Summarize();
    overlay.Disarm(rule->id());
    char what[96];
    std::snprintf(what, sizeof what, "IO latency %d ms on fdatasync (baseline p50 %.2f ms)",
                  delay_ms, base_p50);
    r.what = what;
    r.n = err.size();
    r.p50 = Pct(err, 50);
    r.p99 = Pct(err, 99);
    r.max = Pct(err, 100);
    rows.push_back(r);
  }
  ::close(fd);
  MakeFifo(false);
  sched_param p{};
  pthread_setschedparam(pthread_self(), SCHED_OTHER, &p);
  return rows;
}

Row NetRow(int samples, int64_t spin_ns, bool fifo) {
  Lab lab;
  PeerServers servers(lab.b(), fifo ? kProbePriority : 0);
  InNetns in(lab.a());
  MakeFifo(fifo);
  const double base = Percentile(EchoRtts(300), 0.5);
  net::QueueBehaviour b;
  b.delay = std::chrono::milliseconds(10);
  b.spin_ns = spin_ns;
  net::PacketQueue q(31000, 31999, b);
  q.Start();
  net::NftPlan plan;
  plan.match.to = {*net::ParseCidr(kAddrB)};
  plan.match.protocol = faultline::v1::NetFault::UDP;
  plan.verdict = net::NftPlan::Verdict::kQueue;
  plan.queue = q.queue_num();
  Row r;
  r.load = LoadAvg();
  net::NftCreateTable("faultline_dbench", plan);
  auto rtts = EchoRtts(samples);
  net::NftDeleteTable("faultline_dbench");
  q.Stop();
  std::vector<double> err;
  for (double x : rtts) err.push_back(x - base - 10.0);
  char what[96];
  std::snprintf(what, sizeof what, "NFQUEUE hold 10 ms egress (baseline RTT p50 %.3f ms)", base);
  r.what = what;
  r.agent = q.lateness().Summarize();
  r.n = err.size();
  r.p50 = Pct(err, 50);
  r.p99 = Pct(err, 99);
  r.max = Pct(err, 100);
  sched_param p{};
  pthread_setschedparam(pthread_self(), SCHED_OTHER, &p);
  return r;
}

// The platform's own floor, measured the same way in the same phase: a bare thread at the
// release threads' policy sleeping to absolute 10 ms deadlines, nothing else. Whatever lateness
// this shows, no release thread on this host can beat it.
Row FloorRow(int samples) {
  Row r;
  r.load = LoadAvg();
  const auto rt = faultline::sys::ProbeRealtime();
  std::vector<double> late;
  std::thread([&] {
    faultline::sys::MakeThreadRealtime();
    for (int i = 0; i < samples; ++i) {
      const int64_t due = faultline::sys::MonotonicNs() + 10'000'000;
      timespec ts{static_cast<time_t>(due / 1'000'000'000), static_cast<long>(due % 1'000'000'000)};
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
      }
      late.push_back(static_cast<double>(faultline::sys::MonotonicNs() - due) / 1e6);
    }
  }).join();
  Lateness l;
  for (double x : late) l.Record(static_cast<int64_t>(x * 1e6));
  r.agent = l.Summarize();
  r.what = std::string("platform floor: bare ") + (rt.realtime ? "SCHED_FIFO 10" : "SCHED_OTHER") +
           " thread, 10 ms absolute sleeps";
  r.n = late.size();
  r.p50 = Pct(late, 50);
  r.p99 = Pct(late, 99);
  r.max = Pct(late, 100);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "delay_accuracy_bench needs root (FUSE, namespaces, cgroups)\n");
    return 2;
  }
  fs::path dir = "/var/tmp/faultline-delay-bench-" + std::to_string(::getpid());
  int io_samples = 300, net_samples = 1000;
  int64_t spin_ns = 0;
  bool fifo = false;
  bool boost = false;
  auto workers = io::Overlay::Options::Workers::kWhileDelaying;
  std::vector<std::string> phases = {"idle", "stress"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--io-samples" && i + 1 < argc) {
      io_samples = std::stoi(argv[++i]);
    } else if (a == "--net-samples" && i + 1 < argc) {
      net_samples = std::stoi(argv[++i]);
    } else if (a == "--spin-us" && i + 1 < argc) {
      spin_ns = std::stoll(argv[++i]) * 1000;
    } else if (a == "--probe-fifo") {
      fifo = true;
    } else if (a == "--workers" && i + 1 < argc) {
      auto w = io::ParseWorkers(argv[++i]);
      if (!w) {
        std::fprintf(stderr, "--workers: one of ordinary, while-delaying, realtime\n");
        return 2;
      }
      workers = *w;
    } else if (a == "--boost-stress") {
      boost = true;
    } else if (a == "--phases" && i + 1 < argc) {
      phases.clear();
      std::stringstream ss(argv[++i]);
      for (std::string p; std::getline(ss, p, ',');) phases.push_back(p);
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  fs::create_directories(dir);
  const int cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("%d CPUs, spin %lld us, probes %s, FUSE workers %s, release threads: %s\n\n", cpus,
              static_cast<long long>(spin_ns / 1000), fifo ? "SCHED_FIFO 5" : "SCHED_OTHER",
              std::string(io::WorkersName(workers)).c_str(),
              faultline::sys::ProbeRealtime().detail.c_str());
  std::printf(
      "| delay | host | load avg (1/5/15 min) | samples | error p50 ms | error p99 ms | error max "
      "ms | fault's own lateness p50 / p99 / max ms |\n|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);

  Registry registry;
  stress::RegisterStressFaults(registry);
  FaultContext ctx;
  ctx.state_dir = "/tmp/faultline-delay-bench-" + std::to_string(getpid());
  std::vector<std::string> stress_lines;
  for (const auto& phase : phases) {
    const bool stressed = phase == "stress";
    std::unique_ptr<Fault> stress;
    std::vector<int> pids;
    int64_t t0 = 0;
    std::pair<int64_t, int64_t> h0;
    Clock::time_point w0;
    if (stressed) {
      faultline::v1::FaultSpec spec;
      spec.mutable_stress()->set_action(faultline::v1::StressFault::CPU);
      spec.mutable_stress()->set_load(100);
      spec.mutable_stress()->set_workers(static_cast<uint32_t>(cpus));
      stress = registry.Create(spec, ctx);
      stress->Prepare();
      stress->Apply();
      auto cg = nlohmann::json::parse(stress->State())["cgroup"].get<std::string>();
      pids = stress::CgroupPids(cg);
      if (boost) {
        // As bench_stress_cpu_accuracy --boost: each worker's autogroup at nice -20, so the
        // workers really take 100% of every core from the other builds on a shared host.
        for (int p : pids) std::ofstream("/proc/" + std::to_string(p) + "/autogroup") << -20;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      for (int p : pids) t0 += faultline::bench::ProcessCpuTicks(p);
      h0 = faultline::bench::HostTicks();
      w0 = Clock::now();
    }
    const std::string host =
        stressed ? "CPU stress 100% x " + std::to_string(cpus) + (boost ? " (boosted)" : "")
                 : "idle";
    Print(FloorRow(net_samples), host);
    fs::create_directories(dir / ("io-" + phase));
    for (const auto& r : IoRows(dir / ("io-" + phase), io_samples, spin_ns, fifo, workers))
      Print(r, host);
    Print(NetRow(net_samples, spin_ns, fifo), host);
    if (stressed) {
      int64_t t1 = 0;
      for (int p : pids) t1 += faultline::bench::ProcessCpuTicks(p);
      auto h1 = faultline::bench::HostTicks();
      const double wall = std::chrono::duration<double>(Clock::now() - w0).count();
      const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
      const double per_worker = 100.0 * (static_cast<double>(t1 - t0) / hz) / wall /
                                static_cast<double>(std::max<size_t>(pids.size(), 1));
      const double host_busy = 100.0 * static_cast<double>(h1.first - h0.first) /
                               static_cast<double>(h1.second - h0.second);
      char line[200];
      std::snprintf(line, sizeof line,
                    "stress workers (SCHED_BATCH) got %.1f%% of a CPU each over %.0f s (asked "
                    "100%%); host busy %.0f%% of all CPUs",
                    per_worker, wall, host_busy);
      stress_lines.push_back(line);
      stress->Revert();
    }
  }
  std::printf("\n");
  for (const auto& l : stress_lines) std::printf("%s\n", l.c_str());
  for (const auto& s : registry.Find("stress")->Sweep(ctx)) std::printf("swept: %s\n", s.c_str());
  fs::remove_all(ctx.state_dir);
  fs::remove_all(dir);
  return 0;
}
