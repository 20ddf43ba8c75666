// The target of the time tests: reports its own view of the clocks on request.
// argv[1]: number of extra threads that read CLOCK_MONOTONIC and CLOCK_REALTIME in a tight
// loop (so patching happens while threads run inside the vDSO). stdin: one line per request;
// stdout, one line each: "realtime_ns monotonic_ns boottime_ns gettimeofday_us time_s
// spin_reads". "bench N" instead prints the mean ns of N clock_gettime(CLOCK_REALTIME) calls
// (through the vDSO), "sysbench N" the same by raw syscall.
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

namespace {

std::atomic<long> spins{0};

long long Ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 0;
  std::vector<std::thread> spinners;
  for (int i = 0; i < threads; ++i) {
    spinners.emplace_back([] {
      for (;;) {
        long long a = Ns(CLOCK_MONOTONIC);
        long long b = Ns(CLOCK_REALTIME);
        if (a > 0 && b > 0) spins.fetch_add(1, std::memory_order_relaxed);
      }
    });
    spinners.back().detach();
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  char line[64];
  while (std::fgets(line, sizeof line, stdin)) {
    bool sys = std::strncmp(line, "sysbench", 8) == 0;
    if (sys || std::strncmp(line, "bench", 5) == 0) {
      long n = std::atol(line + (sys ? 8 : 5));
      long long t0 = Ns(CLOCK_MONOTONIC);
      timespec ts{};
      for (long i = 0; i < n; ++i) {
        if (sys) {
          syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
        } else {
          clock_gettime(CLOCK_REALTIME, &ts);
        }
      }
      long long t1 = Ns(CLOCK_MONOTONIC);
      std::printf("%.2f\n", n > 0 ? double(t1 - t0) / double(n) : 0.0);
      continue;
    }
    timeval tv{};
    gettimeofday(&tv, nullptr);
    std::printf("%lld %lld %lld %lld %lld %ld\n", Ns(CLOCK_REALTIME), Ns(CLOCK_MONOTONIC),
                Ns(CLOCK_BOOTTIME), tv.tv_sec * 1000000LL + tv.tv_usec,
                static_cast<long long>(time(nullptr)), spins.load());
  }
  return 0;
}
