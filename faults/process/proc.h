#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace faultline::faults::process {

// A process as /proc shows it. `start_time` (field 22 of /proc/PID/stat, clock ticks since boot)
// tells a pid apart from a later process that reused it.
struct ProcInfo {
  pid_t pid = 0;
  uint64_t start_time = 0;
  char state = '?';
  std::string comm;
  std::string cmdline;  // arguments joined by single spaces
};

std::optional<ProcInfo> ReadProc(pid_t pid);
std::vector<pid_t> ListPids();
// Pids in a cgroup v2 directory (relative to /sys/fs/cgroup) and its descendants.
std::vector<pid_t> CgroupPids(const std::string& cgroup);
// True if `pid` still names the process that had `start_time`.
bool SameProcess(pid_t pid, uint64_t start_time);
// True when no thread of `pid` can run: each is stopped (T, or t when traced), a zombie, or gone.
// kill(SIGSTOP) returns before a busy multi-threaded process has stopped; this says it has.
bool EveryThreadStopped(pid_t pid);

}  // namespace faultline::faults::process
