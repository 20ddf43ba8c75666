#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace faultline::faults::stress {

// What one worker process does. Plain data: the worker runs in a forked child of a
// multithreaded agent, where only async-signal-safe calls are allowed, so everything it needs is
// computed before the fork.
struct WorkerPlan {
  enum Kind { kCpu, kMemory } kind = kCpu;
  int index = 0;
  // CPU: fraction of one CPU to keep busy, (0, 1].
  double load = 0;
  // -1: no pinning.
  int cpu = -1;
  // Memory.
  uint64_t bytes = 0;
  uint64_t growth_bytes_per_second = 0;
  bool mlock = false;
  int oom_score_adj = 1000;
};

// A worker's one-shot report on its status pipe: `code` 0 means set up and running; otherwise
// `stage` says which step failed and `code` is the errno.
struct WorkerReport {
  int32_t index;
  int32_t stage;
  int32_t code;
};
const char* WorkerStageName(int stage);

// The strict allowlist every worker runs under: the clocks, sleeping, anonymous memory and
// exiting, plus writing its report to `status_fd`. Anything else kills the worker. Compiled
// by libseccomp in the parent (it allocates), installed raw in the child.
std::vector<sock_filter> BuildWorkerFilter(int status_fd);

// Starts one worker directly inside the cgroup open as `cgroup_fd` (clone3 CLONE_INTO_CGROUP, so
// there is no moment where it runs outside it). The worker dies with the calling *thread*
// (PR_SET_PDEATHSIG), so call this from a thread that lives as long as the workers.
// Returns the pid; throws FaultError if clone3 fails.
pid_t SpawnWorker(const WorkerPlan& plan, int cgroup_fd, int status_fd,
                  const std::vector<sock_filter>& filter);

}  // namespace faultline::faults::stress
