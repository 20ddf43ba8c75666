#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace faultline::faults::stress {

// Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on unified hosts,
// /sys/fs/cgroup/unified on hybrid ones. Empty if there is none.
std::filesystem::path CgroupV2Root();

// Pids listed in `dir`/cgroup.procs (empty if the cgroup is gone).
std::vector<int> CgroupPids(const std::filesystem::path& dir);

// Kills every process in the cgroup (cgroup.kill where the kernel has it, else SIGKILL to each
// listed pid until none is left), waits until it is empty, then removes the directory.
// Returns how many processes were listed when it started. Absent directory: 0, no error.
// Throws FaultError if the cgroup cannot be emptied or removed within `limit`.
int KillAndRemoveCgroup(const std::filesystem::path& dir,
                        std::chrono::milliseconds limit = std::chrono::seconds(5));

}  // namespace faultline::faults::stress
