// CPU stress accuracy: one worker at 10/50/90% (and N workers where the host has the CPUs),
// measured from /proc/<pid>/stat (utime+stime) over a window, against the requested load. Also
// reports the host's idle share over the same window, since a worker cannot get more CPU than a
// busy shared host gives it.
// With --boost each worker's scheduling autogroup gets nice -20 from outside, so the result shows
// the loop's own accuracy rather than the contended host's fair share.
//   bench_stress_cpu_accuracy [seconds-per-point] [--boost]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "bench/common/proc_stat.h"
#include "faults/core/registry.h"
#include "faults/stress/cgroup.h"
#include "faults/stress/stress_faults.h"

using namespace faultline::faults;
namespace v1 = faultline::v1;

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 5.0;
  const bool boost = argc > 2 && std::string(argv[2]) == "--boost";
  Registry registry;
  stress::RegisterStressFaults(registry);
  FaultContext ctx;
  ctx.state_dir = "/tmp/faultline-bench-stress-" + std::to_string(getpid());
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::printf(
      "| workers x target | measured per worker (mean) | ratio | host busy during window |\n");
  std::printf("|---|---|---|---|\n");
  for (uint32_t workers : {1u, 2u}) {
    for (uint32_t load : {10u, 50u, 90u}) {
      v1::FaultSpec spec;
      spec.mutable_stress()->set_action(v1::StressFault::CPU);
      spec.mutable_stress()->set_load(load);
      spec.mutable_stress()->set_workers(workers);
      auto fault = registry.Create(spec, ctx);
      fault->Prepare();
      fault->Apply();
      auto cg = nlohmann::json::parse(fault->State())["cgroup"].get<std::string>();
      auto pids = stress::CgroupPids(cg);
      if (boost) {
        for (int p : pids) std::ofstream("/proc/" + std::to_string(p) + "/autogroup") << -20;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      int64_t t0 = 0;
      for (int p : pids) t0 += faultline::bench::ProcessCpuTicks(p);
      auto h0 = faultline::bench::HostTicks();
      auto w0 = std::chrono::steady_clock::now();
      std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
      int64_t t1 = 0;
      for (int p : pids) t1 += faultline::bench::ProcessCpuTicks(p);
      auto h1 = faultline::bench::HostTicks();
      double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
      fault->Revert();
      double per_worker =
          100.0 * (static_cast<double>(t1 - t0) / hz) / wall / static_cast<double>(pids.size());
      double host_busy = 100.0 * static_cast<double>(h1.first - h0.first) /
                         static_cast<double>(h1.second - h0.second);
      std::printf("| %u x %u%% | %.1f%% | %.3f | %.0f%% of all CPUs |\n", workers, load, per_worker,
                  per_worker / load, host_busy);
      std::fflush(stdout);
    }
  }
  for (const auto& s : registry.Find("stress")->Sweep(ctx)) std::printf("swept: %s\n", s.c_str());
  std::filesystem::remove_all(ctx.state_dir);
  return 0;
}
