#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "faults/core/rng.h"
#include "faults/sys/unique_fd.h"
#include "faults/syscall/spec.h"

namespace faultline::faults::syscalls {

// What to do to matching calls of a managed process while armed.
struct SyscallRule {
  std::string id;  // chosen by the caller; unique among the interceptor's rules
  std::set<int> syscalls;
  int error = 0;                      // 0: let the call run (after the delay)
  std::chrono::nanoseconds delay{0};  // 0: no stall
  double percent = 100;               // share of matching calls affected, (0, 100]
  uint64_t max_count = 0;             // 0: unlimited
  uint64_t seed = 0;
};

struct RuleCounters {
  int64_t matched = 0;   // matching calls seen while armed
  int64_t affected = 0;  // calls that got the error and/or the delay
};

struct InterceptorCounters {
  int64_t notified = 0;     // calls the kernel handed to us
  int64_t continued = 0;    // let run unchanged
  int64_t failed = 0;       // answered with an errno
  int64_t delayed = 0;      // held on the timer before the answer
  int64_t pending = 0;      // held right now
  int64_t interrupted = 0;  // the caller was gone (killed) by the time we answered
  bool target_gone = false;
};

// Owns a seccomp user-notification listener of one managed process and answers it from its own
// thread: at once with "continue" when no rule matches, with an errno, or after a delay kept on a
// timer heap (the thread never sleeps on a call, so one stalled fdatasync does not hold up the
// process's other threads' calls). Rules switch at run time; destruction answers everything still
// held (as armed, minus the rest of the delay) so the process never hangs on a dead listener.
class SyscallInterceptor {
 public:
  SyscallInterceptor(sys::UniqueFd listener, std::vector<std::string> intercepted);
  // Keeper mode (launch.h): `keeper` is the connection to the process's keeper; the interceptor
  // tells it which calls it holds, so the keeper can release them if this agent dies.
  SyscallInterceptor(sys::UniqueFd listener, sys::UniqueFd keeper,
                     std::vector<std::string> intercepted);
  ~SyscallInterceptor();
  SyscallInterceptor(const SyscallInterceptor&) = delete;
  SyscallInterceptor& operator=(const SyscallInterceptor&) = delete;

  // The syscall names this process's filter hands to us (fixed when it was started).
  const std::vector<std::string>& intercepted() const { return names_; }
  bool Intercepts(int nr) const { return numbers_.count(nr) != 0; }

  // Replaces a rule with the same id (apply twice = apply once).
  void Arm(SyscallRule rule);
  // True if a rule with this id was armed.
  bool Disarm(const std::string& id);
  std::optional<RuleCounters> Counters(const std::string& id) const;
  InterceptorCounters Totals() const;

 private:
  struct Armed {
    SyscallRule rule;
    Rng rng;
    RuleCounters counters;
  };
  struct Held {
    std::chrono::steady_clock::time_point due;
    uint64_t id;
    int error;
    bool operator>(const Held& o) const { return due > o.due; }
  };

  void Loop();
  void Answer(uint64_t id, int error);
  void Wake();
  void TellKeeper(char op, uint64_t id);

  sys::UniqueFd listener_;
  sys::UniqueFd keeper_;  // keeper mode only
  uint64_t reported_ = 0;
  sys::UniqueFd wake_;  // eventfd: rule changes and shutdown
  std::vector<std::string> names_;
  std::set<int> numbers_;

  mutable std::mutex mu_;
  std::vector<Armed> rules_;
  InterceptorCounters totals_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace faultline::faults::syscalls
