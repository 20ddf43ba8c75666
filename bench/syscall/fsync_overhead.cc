// Cost of the syscall interceptor with no rule armed: fsync-loop ops/s of a child started plainly
// and of the same child started under faultline-seccomp-exec with fsync handed to the agent,
// alternating in one run. On tmpfs fsync does almost nothing, so that ratio is the filter's pure
// round-trip cost; on the disk it is what a managed etcd would feel.
//   bench_syscall_overhead [seconds-per-round] [rounds] [dir ...]
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "faults/syscall/interceptor.h"
#include "faults/syscall/launch.h"

using namespace faultline::faults::syscalls;

namespace {

// Child mode: fsync loop for `seconds`, prints ops/s on stdout.
int ChildLoop(const char* path, double seconds) {
  int fd = open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 1;
  long ops = 0;
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < end) {
    if (pwrite(fd, "x", 1, ops % 4096) != 1 || fsync(fd) != 0) return 2;
    ++ops;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%.1f\n", static_cast<double>(ops) / secs);
  close(fd);
  unlink(path);
  return 0;
}

double RunChild(const std::string& self, const std::string& path, double seconds, bool filtered) {
  std::vector<std::string> argv{self, "--child", path, std::to_string(seconds)};
  std::unique_ptr<NotifyChannel> channel;
  if (filtered) {
    channel = std::make_unique<NotifyChannel>();
    argv = channel->WrapArgv(argv, {"fsync"}, FAULTLINE_BINARY_DIR "/agent/faultline-seccomp-exec");
  }
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return -1;
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    if (channel) channel->PrepareChild();
    dup2(out[1], 1);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  close(out[1]);
  std::unique_ptr<SyscallInterceptor> interceptor;
  if (channel)
    interceptor =
        std::make_unique<SyscallInterceptor>(channel->Receive(), std::vector<std::string>{"fsync"});
  char buf[64] = {};
  ssize_t n = read(out[0], buf, sizeof buf - 1);
  close(out[0]);
  int status;
  waitpid(pid, &status, 0);
  if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return std::atof(buf);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && std::strcmp(argv[1], "--child") == 0)
    return ChildLoop(argv[2], std::atof(argv[3]));
  double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  std::vector<std::string> dirs;
  for (int i = 3; i < argc; ++i) dirs.push_back(argv[i]);
  if (dirs.empty()) dirs = {"/dev/shm", "/var/tmp"};
  std::string self = "/proc/self/exe";
  char resolved[4096];
  ssize_t len = readlink("/proc/self/exe", resolved, sizeof resolved - 1);
  if (len > 0) self.assign(resolved, static_cast<size_t>(len));

  std::printf(
      "| file on | plain fsync ops/s | under filter, no rule ops/s | ratio | added per call |\n");
  std::printf("|---|---|---|---|---|\n");
  for (const auto& dir : dirs) {
    std::string path = dir + "/faultline-bench-fsync-" + std::to_string(getpid());
    std::vector<double> plain, filtered;
    for (int r = 0; r < rounds; ++r) {
      plain.push_back(RunChild(self, path, seconds, false));
      filtered.push_back(RunChild(self, path, seconds, true));
    }
    double p = Median(plain), f = Median(filtered);
    std::printf("| %s | %.0f | %.0f | %.3f | %.1f us |\n", dir.c_str(), p, f, f / p,
                (1e6 / f - 1e6 / p));
  }
  return 0;
}
