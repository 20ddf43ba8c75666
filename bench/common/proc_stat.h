#pragma once

// CPU time as /proc accounts it, for benches that check what a load really got from outside.
#include <sys/types.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

namespace faultline::bench {

// utime + stime of `pid` in clock ticks (0 if it is gone), read the way `top` does.
inline int64_t ProcessCpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), {});
  if (s.empty()) return 0;
  std::istringstream rest(s.substr(s.rfind(')') + 2));
  std::string field;
  int64_t total = 0;
  for (int i = 3; i <= 15; ++i) {
    rest >> field;
    if (i == 14 || i == 15) total += std::stoll(field);
  }
  return total;
}

// (busy, total) jiffies of the whole host, from the first line of /proc/stat.
inline std::pair<int64_t, int64_t> HostTicks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  int64_t v, total = 0, idle = 0;
  in >> cpu;
  for (int i = 0; i < 10 && in >> v; ++i) {
    total += v;
    if (i == 3 || i == 4) idle += v;
  }
  return {total - idle, total};
}

}  // namespace faultline::bench
