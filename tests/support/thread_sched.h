#pragma once

// Reads how another thread is scheduled the way `ps -L -o cls,rtprio` does: from
// /proc/PID/task/TID/stat (fields 40 rt_priority and 41 policy), i.e. from outside the code
// that set it.
#include <sys/types.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace faultline::testing {

struct ThreadSched {
  pid_t tid = 0;
  int policy = -1;       // SCHED_OTHER 0, SCHED_FIFO 1, SCHED_RR 2, SCHED_BATCH 3, SCHED_IDLE 5
  int rt_priority = -1;  // 1..99 for real-time policies, 0 otherwise
};

// Policy and real-time priority of /proc/`pid`/task/`tid` (or of the process when tid is 0).
inline ThreadSched ReadThreadSched(pid_t pid, pid_t tid = 0) {
  ThreadSched t;
  t.tid = tid == 0 ? pid : tid;
  std::string base = "/proc/" + std::to_string(pid);
  if (tid != 0) base += "/task/" + std::to_string(tid);
  std::ifstream in(base + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), {});
  auto close = s.rfind(')');
  if (close == std::string::npos) return t;
  std::istringstream rest(s.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 41 && rest >> field; ++i) {
    if (i == 40) t.rt_priority = std::stoi(field);
    if (i == 41) t.policy = std::stoi(field);
  }
  return t;
}

// The threads of `pid` whose name (comm) is `name`, with their scheduling.
inline std::vector<ThreadSched> ThreadsNamed(pid_t pid, const std::string& name) {
  std::vector<ThreadSched> out;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream comm(e.path() / "comm");
    std::string c;
    std::getline(comm, c);
    if (c != name) continue;
    out.push_back(ReadThreadSched(pid, static_cast<pid_t>(std::stoi(e.path().filename()))));
  }
  return out;
}

}  // namespace faultline::testing
