#include "faults/sys/realtime.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>

#include <thread>

#include "faults/sys/error.h"

namespace faultline::sys {
namespace {

// Touches `bytes` below the current stack pointer and locks them, so the thread's stack is
// resident before its first deadline. Best effort: false when mlock is refused (RLIMIT_MEMLOCK).
__attribute__((noinline)) bool LockStack(size_t bytes) {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return false;
  void* base = nullptr;
  size_t size = 0;
  pthread_attr_getstack(&attr, &base, &size);
  pthread_attr_destroy(&attr);
  char probe;
  auto top = reinterpret_cast<uintptr_t>(&probe);
  auto low = reinterpret_cast<uintptr_t>(base);
  const uintptr_t page = 4096;
  uintptr_t start = top > bytes ? top - bytes : 0;
  if (start < low + page) start = low + page;  // stay clear of the guard page
  start &= ~(page - 1);
  uintptr_t end = (top + page) & ~(page - 1);
  if (start >= end) return false;
  // Write each page through a volatile pointer below our frame: pre-faults without recursion.
  for (uintptr_t p = start; p < top - 256; p += page) *reinterpret_cast<volatile char*>(p) = 0;
  return mlock(reinterpret_cast<void*>(start), end - start) == 0;
}

}  // namespace

std::string PolicyName(int policy) {
  switch (policy) {
    case SCHED_OTHER:
      return "SCHED_OTHER";
    case SCHED_FIFO:
      return "SCHED_FIFO";
    case SCHED_RR:
      return "SCHED_RR";
    case SCHED_BATCH:
      return "SCHED_BATCH";
    case SCHED_IDLE:
      return "SCHED_IDLE";
    default:
      return "policy " + std::to_string(policy);
  }
}

ThreadScheduling MakeThreadRealtime(int priority, size_t stack_bytes) {
  ThreadScheduling s;
  sched_param p{};
  p.sched_priority = priority;
  int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &p);
  s.stack_locked = stack_bytes > 0 && LockStack(stack_bytes);
  int policy = SCHED_OTHER;
  sched_param now{};
  pthread_getschedparam(pthread_self(), &policy, &now);
  s.policy = policy;
  s.realtime = err == 0 && policy == SCHED_FIFO;
  s.priority = s.realtime ? now.sched_priority : 0;
  if (s.realtime) {
    s.detail = "SCHED_FIFO " + std::to_string(s.priority);
  } else {
    s.detail = PolicyName(policy) + " (SCHED_FIFO refused: " + strerror(err) +
               (err == EPERM ? "; needs CAP_SYS_NICE, RLIMIT_RTPRIO or a cgroup with a real-time "
                               "budget"
                             : "") +
               "): host load can make releases late";
  }
  s.detail += s.stack_locked ? ", stack locked" : ", stack not locked";
  return s;
}

void MakeThreadOrdinary() {
  sched_param p{};
  pthread_setschedparam(pthread_self(), SCHED_OTHER, &p);
}

ThreadScheduling ProbeRealtime(int priority) {
  ThreadScheduling s;
  std::thread([&] { s = MakeThreadRealtime(priority, 0); }).join();
  s.detail = s.detail.substr(0, s.detail.rfind(", stack"));
  return s;
}

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

AbsoluteTimer::AbsoluteTimer() : fd_(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {
  if (!fd_) ThrowErrno("timerfd_create");
}

void AbsoluteTimer::Arm(int64_t deadline_ns) {
  if (deadline_ns == armed_) return;
  // A zero it_value disarms, so a deadline at (or before) the epoch becomes 1 ns.
  if (deadline_ns <= 0) deadline_ns = 1;
  itimerspec its{};
  its.it_value.tv_sec = deadline_ns / 1'000'000'000;
  its.it_value.tv_nsec = deadline_ns % 1'000'000'000;
  timerfd_settime(fd_.get(), TFD_TIMER_ABSTIME, &its, nullptr);
  armed_ = deadline_ns;
}

void AbsoluteTimer::Disarm() {
  if (armed_ < 0) return;
  itimerspec its{};
  timerfd_settime(fd_.get(), TFD_TIMER_ABSTIME, &its, nullptr);
  armed_ = -1;
}

void AbsoluteTimer::Drain() {
  uint64_t n;
  if (::read(fd_.get(), &n, sizeof n) == sizeof n) armed_ = -1;
}

void SpinUntil(int64_t deadline_ns) {
  while (MonotonicNs() < deadline_ns) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
}

}  // namespace faultline::sys
