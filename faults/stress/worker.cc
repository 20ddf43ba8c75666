#include "faults/stress/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "faults/core/errors.h"
#include "faults/sys/unique_fd.h"

namespace faultline::faults::stress {
namespace {

enum Stage : int32_t {
  kRunning = 0,
  kPdeathsig = 1,
  kParentGone = 2,
  kAffinity = 3,
  kOomScore = 4,
  kNoNewPrivs = 5,
  kSeccomp = 6,
  kMmap = 7,
  kMlock = 8,
  kSetsid = 9,
  kSchedBatch = 10,
};

// ---- Everything below runs in the child: raw syscalls only, no allocation, no locks. ----

int64_t Now(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void SleepNs(int64_t ns) {
  if (ns <= 0) return;
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
  }
}

void Report(int fd, int32_t index, int32_t stage, int32_t code) {
  WorkerReport r{index, stage, code};
  (void)!write(fd, &r, sizeof r);
}

[[noreturn]] void Fail(int fd, int32_t index, int32_t stage) {
  Report(fd, index, stage, errno == 0 ? EINVAL : errno);
  syscall(SYS_exit_group, 100 + stage);
  __builtin_unreachable();
}

// Closed loop on the worker's own CPU clock: the busy share of wall time is measured, not
// assumed, so time the scheduler takes away (a contended host) is made up, and a spin that ran
// long is paid back with sleep. The debt either way is capped so a long stall does not turn
// into a long burst at 100%.
[[noreturn]] void CpuLoop(double load) {
  constexpr int64_t kCap = 200'000'000;   // at most 200ms of debt or credit
  constexpr int64_t kSlice = 5'000'000;   // spin at most 5ms between checks of the target
  constexpr int64_t kMinSleep = 500'000;  // below this, sleeping costs more than it saves
  constexpr int64_t kMaxSleep = 100'000'000;
  int64_t wall0 = Now(CLOCK_MONOTONIC);
  int64_t cpu0 = Now(CLOCK_PROCESS_CPUTIME_ID);
  while (true) {
    int64_t wall = Now(CLOCK_MONOTONIC) - wall0;
    int64_t cpu = Now(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    int64_t debt = static_cast<int64_t>(load * static_cast<double>(wall)) - cpu;
    if (debt > kCap) {
      cpu0 -= debt - kCap;
      debt = kCap;
    } else if (debt < -kCap) {
      cpu0 += -kCap - debt;
      debt = -kCap;
    }
    if (debt > 0) {
      int64_t until = cpu0 + cpu + std::min(debt, kSlice);
      while (Now(CLOCK_PROCESS_CPUTIME_ID) < until) {
      }
    } else {
      // Sleep until the target catches up with what was used: -debt / load of wall time.
      int64_t ns = static_cast<int64_t>(static_cast<double>(-debt) / load);
      SleepNs(std::clamp(ns, kMinSleep, kMaxSleep));
    }
  }
}

[[noreturn]] void MemoryLoop(const WorkerPlan& plan, int status_fd) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t bytes = (plan.bytes + page - 1) / page * page;
  // MAP_NORESERVE: the size was checked against MemAvailable already; overcommit accounting
  // must not refuse what the floor check allowed.
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) Fail(status_fd, plan.index, kMmap);
  // Base pages only, so the resident size follows the touched size exactly.
  madvise(mem, bytes, MADV_NOHUGEPAGE);
  auto* base = static_cast<volatile unsigned char*>(mem);
  Report(status_fd, plan.index, kRunning, 0);
  // Touch in 100ms steps at the growth rate, or all at once.
  const uint64_t step = plan.growth_bytes_per_second == 0
                            ? bytes
                            : std::max<uint64_t>(page, plan.growth_bytes_per_second / 10);
  uint64_t done = 0;
  int64_t next = Now(CLOCK_MONOTONIC);
  while (done < bytes) {
    uint64_t end = std::min(bytes, done + step);
    for (uint64_t off = done; off < end; off += page) base[off] = 1;
    if (plan.mlock && mlock(const_cast<unsigned char*>(base) + done, end - done) != 0) {
      Fail(status_fd, plan.index, kMlock);
    }
    done = end;
    if (plan.growth_bytes_per_second != 0) {
      next += 100'000'000;
      SleepNs(next - Now(CLOCK_MONOTONIC));
    }
  }
  while (true) SleepNs(3600LL * 1'000'000'000);
}

[[noreturn]] void WorkerMain(const WorkerPlan& plan, pid_t parent, int status_fd,
                             const sock_fprog* prog) {
  errno = 0;
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Fail(status_fd, plan.index, kPdeathsig);
  // The parent may have died before PDEATHSIG was armed.
  if (getppid() != parent) Fail(status_fd, plan.index, kParentGone);
  // A session of its own: with autogroup scheduling (Debian's default) the kernel shares CPU
  // between sessions first, so workers left in the agent's session would only split the agent's
  // share instead of competing with the processes under test like independent programs.
  if (setsid() < 0) Fail(status_fd, plan.index, kSetsid);
  // SCHED_BATCH: the same CPU share as any ordinary task (the load still lands on etcd), but a
  // worker never preempts a task that wakes up — faultline's delay release threads above all
  // (real-time where permitted, ordinary tasks otherwise), whose wake-up ends an injected delay.
  {
    sched_param none{};
    if (sched_setscheduler(0, SCHED_BATCH, &none) != 0) Fail(status_fd, plan.index, kSchedBatch);
  }
  if (plan.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(plan.cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) Fail(status_fd, plan.index, kAffinity);
  }
  {
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%d", plan.oom_score_adj);
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, buf, static_cast<size_t>(n)) != n) {
      Fail(status_fd, plan.index, kOomScore);
    }
    close(fd);
  }
  // The agent's sockets, journal and pipes are none of a worker's business.
  if (status_fd > 0) syscall(SYS_close_range, 0u, static_cast<unsigned>(status_fd) - 1, 0u);
  syscall(SYS_close_range, static_cast<unsigned>(status_fd) + 1, ~0u, 0u);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Fail(status_fd, plan.index, kNoNewPrivs);
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) != 0) {
    Fail(status_fd, plan.index, kSeccomp);
  }
  if (plan.kind == WorkerPlan::kMemory) MemoryLoop(plan, status_fd);
  Report(status_fd, plan.index, kRunning, 0);
  CpuLoop(plan.load);
}

}  // namespace

const char* WorkerStageName(int stage) {
  switch (stage) {
    case kRunning:
      return "running";
    case kPdeathsig:
      return "prctl(PR_SET_PDEATHSIG)";
    case kParentGone:
      return "parent exited during start";
    case kAffinity:
      return "sched_setaffinity";
    case kOomScore:
      return "writing oom_score_adj";
    case kNoNewPrivs:
      return "prctl(PR_SET_NO_NEW_PRIVS)";
    case kSeccomp:
      return "installing the seccomp filter";
    case kMmap:
      return "mmap";
    case kMlock:
      return "mlock";
    case kSetsid:
      return "setsid";
    case kSchedBatch:
      return "sched_setscheduler(SCHED_BATCH)";
    default:
      return "unknown stage";
  }
}

std::vector<sock_filter> BuildWorkerFilter(int status_fd) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (ctx == nullptr) throw FaultError("seccomp_init failed");
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};
  auto allow = [&](int nr) {
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    if (rc != 0) ThrowErrno("seccomp_rule_add", -rc);
  };
  for (int nr :
       {SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(exit),
        SCMP_SYS(exit_group), SCMP_SYS(rt_sigreturn), SCMP_SYS(restart_syscall), SCMP_SYS(mmap),
        SCMP_SYS(munmap), SCMP_SYS(madvise), SCMP_SYS(mlock), SCMP_SYS(sched_yield)}) {
    allow(nr);
  }
  // Its report, and nothing else.
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1,
                            SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(status_fd)));
  if (rc != 0) ThrowErrno("seccomp_rule_add(write)", -rc);
  // libseccomp 2.5 exports BPF to a file descriptor only; a memfd keeps it in memory.
  sys::UniqueFd mem(
      static_cast<int>(syscall(SYS_memfd_create, "faultline-stress-bpf", MFD_CLOEXEC)));
  if (!mem) ThrowErrno("memfd_create");
  rc = seccomp_export_bpf(ctx, mem.get());
  if (rc != 0) ThrowErrno("seccomp_export_bpf", -rc);
  off_t size = lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0) {
    throw FaultError("seccomp_export_bpf produced " + std::to_string(size) + " bytes");
  }
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(mem.get(), prog.data(), static_cast<size_t>(size), 0) != size) {
    ThrowErrno("reading the exported seccomp filter");
  }
  return prog;
}

pid_t SpawnWorker(const WorkerPlan& plan, int cgroup_fd, int status_fd,
                  const std::vector<sock_filter>& filter) {
  sock_fprog prog{static_cast<unsigned short>(filter.size()),
                  const_cast<sock_filter*>(filter.data())};
  const pid_t parent = getpid();
  clone_args args{};
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cgroup_fd);
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) ThrowErrno("clone3(CLONE_INTO_CGROUP) of a stress worker");
  if (pid == 0) WorkerMain(plan, parent, status_fd, &prog);
  return static_cast<pid_t>(pid);
}

}  // namespace faultline::faults::stress
