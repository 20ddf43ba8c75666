#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "faults/sys/unique_fd.h"

namespace faultline::faults::time {

// Every thread of a process held in a ptrace stop for as long as this object lives, so its
// code can be changed without a thread running half-written instructions. PTRACE_SEIZE +
// PTRACE_INTERRUPT: invisible to the process and its parent (no SIGSTOP, no job-control
// change). Signals that arrive meanwhile are handed back at detach. All calls must come from
// the thread that constructed it (ptrace binds a tracee to one tracer thread). If the agent
// dies, the kernel detaches and the threads run on.
class StoppedProcess {
 public:
  // Throws FaultError (after detaching what it attached) when a thread is traced by another
  // process, cannot be attached, or does not stop within `timeout` (e.g. stuck in D state).
  StoppedProcess(pid_t pid, std::chrono::milliseconds timeout);
  ~StoppedProcess();
  StoppedProcess(const StoppedProcess&) = delete;
  StoppedProcess& operator=(const StoppedProcess&) = delete;

  std::vector<pid_t> Threads() const;
  uint64_t Rip(pid_t tid) const;
  // Single-steps `tid` until its instruction pointer leaves [lo, hi). Returns the steps taken;
  // throws after `max_steps`.
  int StepOutOf(pid_t tid, uint64_t lo, uint64_t hi, int max_steps = 100000);

 private:
  struct Thread {
    pid_t tid;
    bool alive = true;
    std::vector<int> signals;  // delivered to the thread when it is let go
  };
  void Wait(Thread& t, std::chrono::steady_clock::time_point deadline);
  void Record(Thread& t, int status);
  void DetachAll();
  Thread& Find(pid_t tid);

  pid_t pid_;
  std::vector<Thread> threads_;
};

// The pid of the process tracing `tid` (0 if none), from /proc/PID/task/TID/status.
pid_t TracerOf(pid_t pid, pid_t tid);

// A process's memory through /proc/PID/mem (needs ptrace rights over it). Writes reach
// read-only mappings such as the vDSO as the kernel's forced private copies, which only this
// process sees.
class ProcessMemory {
 public:
  explicit ProcessMemory(pid_t pid);
  std::string Read(uint64_t addr, size_t n) const;
  void Write(uint64_t addr, const std::string& bytes) const;

 private:
  pid_t pid_;
  sys::UniqueFd fd_;
};

}  // namespace faultline::faults::time
