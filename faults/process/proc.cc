#include "faults/process/proc.h"

#include <dirent.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace faultline::faults::process {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::optional<ProcInfo> ReadProc(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::string base = "/proc/" + std::to_string(pid);
  std::string stat = Slurp(base + "/stat");
  // comm is parenthesised and may itself contain spaces and ')': split at the last ')'.
  auto open = stat.find('(');
  auto close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  ProcInfo info;
  info.pid = pid;
  info.comm = stat.substr(open + 1, close - open - 1);
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  rest >> info.state;
  // Fields 4..21 precede starttime (22); state was field 3.
  for (int i = 4; i <= 21 && rest >> field; ++i) {
  }
  if (!(rest >> info.start_time)) return std::nullopt;
  std::string cmd = Slurp(base + "/cmdline");
  while (!cmd.empty() && cmd.back() == '\0') cmd.pop_back();
  for (char& c : cmd) {
    if (c == '\0') c = ' ';
  }
  info.cmdline = std::move(cmd);
  return info;
}

std::vector<pid_t> ListPids() {
  std::vector<pid_t> pids;
  DIR* d = opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long v = std::strtol(e->d_name, &end, 10);
    if (*end == '\0' && v > 0) pids.push_back(static_cast<pid_t>(v));
  }
  closedir(d);
  return pids;
}

std::vector<pid_t> CgroupPids(const std::string& cgroup) {
  std::vector<pid_t> pids;
  std::filesystem::path root = std::filesystem::path("/sys/fs/cgroup") / cgroup;
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) return pids;
  auto add = [&](const std::filesystem::path& dir) {
    std::ifstream in(dir / "cgroup.procs");
    pid_t p;
    while (in >> p) pids.push_back(p);
  };
  add(root);
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec)) add(it->path());
  }
  return pids;
}

bool SameProcess(pid_t pid, uint64_t start_time) {
  auto info = ReadProc(pid);
  return info && info->start_time == start_time;
}

bool EveryThreadStopped(pid_t pid) {
  std::error_code ec;
  std::filesystem::directory_iterator tasks("/proc/" + std::to_string(pid) + "/task", ec);
  if (ec) return true;  // gone
  for (const auto& task : tasks) {
    std::string stat = Slurp((task.path() / "stat").string());
    auto close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size()) continue;  // exited meanwhile
    char state = stat[close + 2];
    if (state != 'T' && state != 't' && state != 'Z' && state != 'X') return false;
  }
  return true;
}

}  // namespace faultline::faults::process
