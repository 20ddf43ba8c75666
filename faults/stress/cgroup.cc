#include "faults/stress/cgroup.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "faults/core/errors.h"
#include "faults/sys/mountinfo.h"

namespace faultline::faults::stress {

std::filesystem::path CgroupV2Root() {
  for (const auto& m : sys::ReadMountInfo()) {
    // A cgroup2 mount of a sub-tree (containers) is still usable: we create below it.
    if (m.fstype == "cgroup2") return m.mount_point;
  }
  return {};
}

std::vector<int> CgroupPids(const std::filesystem::path& dir) {
  std::vector<int> pids;
  std::ifstream in(dir / "cgroup.procs");
  int pid;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

namespace {

bool WriteFile(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p);
  if (!out) return false;
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace

int KillAndRemoveCgroup(const std::filesystem::path& dir, std::chrono::milliseconds limit) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return 0;
  // Child cgroups first (a worker never makes any, but a stale tree may hold some).
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec)) KillAndRemoveCgroup(entry.path(), limit);
  }
  const int listed = static_cast<int>(CgroupPids(dir).size());
  // cgroup.kill (5.14+) kills atomically, including processes forked while we look.
  const bool has_kill = std::filesystem::exists(dir / "cgroup.kill", ec);
  if (has_kill) WriteFile(dir / "cgroup.kill", "1");
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    auto pids = CgroupPids(dir);
    if (pids.empty()) break;
    if (!has_kill) {
      for (int pid : pids) ::kill(pid, SIGKILL);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw FaultError("cgroup " + dir.string() + " still holds " + std::to_string(pids.size()) +
                       " process(es) after SIGKILL");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // The last task leaving can race with rmdir (EBUSY) for a moment.
  while (::rmdir(dir.c_str()) != 0) {
    if (errno == ENOENT) break;
    if (errno != EBUSY || std::chrono::steady_clock::now() > deadline) {
      ThrowErrno("rmdir " + dir.string());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return listed;
}

}  // namespace faultline::faults::stress
