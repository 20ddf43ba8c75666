#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "faults/sys/unique_fd.h"

namespace faultline::sys {

// How a release thread (delayed FUSE replies, held NFQUEUE packets) ended up scheduled. Such a
// thread only waits for deadlines and then does a few microseconds of work, so a real-time policy
// costs the host nothing measurable, while without it a busy host (a build, faultline's own CPU
// stress) decides when an injected delay ends.
struct ThreadScheduling {
  bool realtime = false;  // SCHED_FIFO was granted
  int policy = 0;         // SCHED_* the thread runs under now
  int priority = 0;       // its real-time priority (0 when not real-time)
  bool stack_locked = false;
  // One line for `faultline status`: "SCHED_FIFO 10, stack locked" or why not.
  std::string detail;
};

// The real-time priority release threads ask for: above every ordinary task, below the kernel's
// threaded interrupt handlers (50) so a release never delays the interrupts it depends on.
constexpr int kReleasePriority = 10;

// Puts the calling thread on SCHED_FIFO `priority` and locks (and pre-faults) `stack_bytes` of its
// stack so a release never waits on a page fault. Where the policy is refused (no CAP_SYS_NICE and
// no RLIMIT_RTPRIO, a container whose cgroup has no real-time budget) the thread stays on its
// normal policy and the result says so and why; nothing throws.
ThreadScheduling MakeThreadRealtime(int priority = kReleasePriority,
                                    size_t stack_bytes = 64 * 1024);

// Puts the calling thread back on SCHED_OTHER: for threads that a release thread starts (they
// inherit its policy) and that do ordinary work.
void MakeThreadOrdinary();

// Whether a thread of this process would get SCHED_FIFO: asked on a short-lived thread, so the
// caller keeps its own policy. For the agent's capability report.
ThreadScheduling ProbeRealtime(int priority = kReleasePriority);

// "SCHED_OTHER", "SCHED_FIFO", ... for a SCHED_* value.
std::string PolicyName(int policy);

// CLOCK_MONOTONIC in nanoseconds: the clock every release deadline is on.
int64_t MonotonicNs();

// A CLOCK_MONOTONIC timerfd armed at absolute deadlines (TFD_TIMER_ABSTIME), so the time spent
// between computing a deadline and arming it never stretches the wait. Non-blocking; poll fd().
class AbsoluteTimer {
 public:
  AbsoluteTimer();
  int fd() const { return fd_.get(); }
  // Fires once at `deadline_ns` (at once when it has passed).
  void Arm(int64_t deadline_ns);
  void Disarm();
  // Reads the expiry count so the fd stops polling readable.
  void Drain();

 private:
  UniqueFd fd_;
  int64_t armed_ = -1;
};

// Busy-waits until `deadline_ns`: the last stretch before a release, where a timer wake-up would
// be later than the spin. Bounded by the caller (it spins only after a timer woke it shortly
// before the deadline).
void SpinUntil(int64_t deadline_ns);

}  // namespace faultline::sys
