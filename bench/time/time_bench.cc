// Cost of a time fault: (1) one clock_gettime(CLOCK_REALTIME) in the target with the fault
// armed vs not, and a raw syscall for the fallback path's cost; (2) time to apply and revert
// on etcd (a Go program with dozens of threads), idle and under client load.
// Usage (root, from the build dir): bench/time/bench_time [rounds] [calls]
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "faults/process/proc.h"
#include "faults/sys/command.h"
#include "faults/time/blob.h"
#include "faults/time/skew.h"
#include "faults/time/spec.h"

namespace {

using namespace faultline::faults;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kProbe = FAULTLINE_BINARY_DIR "/tests/integration/time/time_clock_probe";

struct Child {
  pid_t pid = -1;
  FILE* to = nullptr;
  FILE* from = nullptr;
  explicit Child(std::vector<std::string> argv, bool pipes, const std::string& log = "") {
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    if (pipes && (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)) std::exit(2);
    pid = fork();
    if (pid == 0) {
      if (pipes) {
        dup2(in[0], 0);
        dup2(out[1], 1);
      } else {
        int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
    if (pipes) {
      close(in[0]);
      close(out[1]);
      to = fdopen(in[1], "w");
      from = fdopen(out[0], "r");
    }
  }
  ~Child() {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  double Ask(const std::string& cmd) {
    std::fprintf(to, "%s\n", cmd.c_str());
    std::fflush(to);
    double v = 0;
    if (std::fscanf(from, "%lf", &v) != 1) std::exit(3);
    return v;
  }
};

time::SkewPlan Plan(pid_t pid, int64_t offset_ns) {
  auto info = process::ReadProc(pid);
  return time::PlanSkew(pid, info->start_time, info->comm, offset_ns, time::kRealtimeMask);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int Threads(pid_t pid) {
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    (void)e;
    ++n;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  long calls = argc > 2 ? std::atol(argv[2]) : 2'000'000;
  const std::string n = std::to_string(calls);

  // (1) per-call cost in the probe: plain, armed, and a raw syscall; alternating rounds.
  {
    Child probe({kProbe, "0"}, true);
    probe.Ask("bench 1");  // answers once exec is done: plan on its own vDSO
    auto plan = Plan(probe.pid, -60'000'000'000);
    std::vector<double> plain, armed, sys;
    for (int r = 0; r < rounds; ++r) {
      plain.push_back(probe.Ask("bench " + n));
      time::ApplySkew(plan, 5s);
      armed.push_back(probe.Ask("bench " + n));
      time::RevertSkew(plan, 5s);
      sys.push_back(probe.Ask("sysbench " + n));
    }
    std::printf("clock_gettime(CLOCK_REALTIME), %ld calls x %d rounds, medians:\n", calls, rounds);
    std::printf("| plain ns | armed ns | ratio | raw syscall ns | syscall/plain | real clock |\n");
    std::printf("|---|---|---|---|---|---|\n");
    std::printf("| %.1f | %.1f | %.2f | %.1f | %.2f | %s |\n", Median(plain), Median(armed),
                Median(armed) / Median(plain), Median(sys), Median(sys) / Median(plain),
                plan.real_via_syscall ? "syscall" : "vDSO (displaced prologue)");
  }

  // (2) apply/revert on etcd.
  std::string dir = "/tmp/faultline-bench-time-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  const std::string url = "http://127.0.0.1:23999", peer = "http://127.0.0.1:24099";
  {
    Child etcd({"/usr/bin/etcd", "--name", "b", "--data-dir", dir + "/d", "--listen-client-urls",
                url, "--advertise-client-urls", url, "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer, "--initial-cluster", "b=" + peer},
               false, dir + "/etcd.log");
    for (int i = 0; i < 100; ++i) {
      if (faultline::sys::RunCommand({"/usr/bin/etcdctl", "--endpoints", url, "endpoint", "health"},
                                     5s)
              .exit_code == 0) {
        break;
      }
      std::this_thread::sleep_for(200ms);
    }
    for (bool load : {false, true}) {
      std::atomic<bool> stop{false};
      std::thread loader;
      if (load) {
        loader = std::thread([&] {
          while (!stop) {
            faultline::sys::RunCommand(
                {"/usr/bin/etcdctl", "--endpoints", url, "check", "perf", "--load=s"}, 120s);
          }
        });
        std::this_thread::sleep_for(3s);
      }
      std::vector<double> apply, revert;
      int threads = Threads(etcd.pid);
      for (int r = 0; r < rounds * 4; ++r) {
        auto plan = Plan(etcd.pid, -60'000'000'000);
        auto t0 = Clock::now();
        time::ApplySkew(plan, 5s);
        auto t1 = Clock::now();
        time::RevertSkew(plan, 5s);
        auto t2 = Clock::now();
        apply.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        revert.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
        std::this_thread::sleep_for(100ms);
      }
      stop = true;
      if (loader.joinable()) loader.join();
      std::printf(
          "etcd (%d threads, %s): apply median %.2f ms max %.2f ms; revert median %.2f "
          "ms max %.2f ms (%d rounds)\n",
          threads, load ? "under etcdctl check perf load" : "idle", Median(apply),
          *std::max_element(apply.begin(), apply.end()), Median(revert),
          *std::max_element(revert.begin(), revert.end()), rounds * 4);
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
