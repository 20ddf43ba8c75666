#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "faults/core/errors.h"

namespace faultline::faults {

namespace syscalls {
class SyscallInterceptor;
}

// The agent's supervisor of managed processes, as fault families see it: process faults pause,
// kill and restart managed processes by name; syscall and IO faults find their targets here.
class Supervisor {
 public:
  virtual ~Supervisor() = default;
  virtual std::vector<std::string> Names() const = 0;
  // Current pid of the managed process, 0 if it is not running. Throws FaultError if unknown.
  virtual int Pid(std::string_view name) const = 0;
  // Stop with `signal`, escalate to SIGKILL after `grace`, start again with the same argv, env,
  // cwd and mounts; returns the time from the stop until the readiness probe passed.
  virtual std::chrono::nanoseconds Restart(std::string_view name, int signal,
                                           std::chrono::nanoseconds grace) = 0;
  // Start a stopped managed process again (after a kill fault with automatic restart).
  virtual std::chrono::nanoseconds Start(std::string_view name) = 0;
  // For a member that comes back empty (process/rejoin): stop it and keep it down, read the
  // argv it runs with, and start it with arguments added to its configured argv, for this start
  // and every later one, without waiting for readiness (a new member may take long to catch
  // up; the run's checks judge it). Supervisors that cannot throw FaultError.
  virtual void Stop(std::string_view name, int /*signal*/, std::chrono::nanoseconds /*grace*/) {
    throw FaultError("this agent cannot stop managed process \"" + std::string(name) + "\"");
  }
  virtual std::vector<std::string> Argv(std::string_view name) const {
    throw FaultError("this agent cannot read the argv of \"" + std::string(name) + "\"");
  }
  virtual void StartWith(std::string_view name, std::vector<std::string> /*extra_args*/) {
    throw FaultError("this agent cannot start \"" + std::string(name) + "\" with new arguments");
  }
  // The seccomp interceptor of a managed process started under faultline-seccomp-exec
  // (faults/syscall), nullptr if it runs without one. A restart replaces it (concurrently with
  // any caller): the caller's copy keeps the old one alive, idle, until it lets go, so callers
  // hold it only for one use and look it up again for the next.
  virtual std::shared_ptr<syscalls::SyscallInterceptor> Interceptor(std::string_view /*name*/) {
    return nullptr;
  }
  // A fault is about to send `signal` to `pid` (`by` names the fault): if that is a managed
  // process and it ends after it, the supervisor records the exit as meant, not as a crash.
  virtual void NoteSignal(int /*pid*/, int /*signal*/, const std::string& /*by*/) {}
  // A fault has SIGKILLed `pid` from elsewhere (an IO crash, run by the overlay process): if it
  // is or was a managed process, its exit is recorded as meant, even when already recorded.
  virtual void NoteKilled(int /*pid*/, const std::string& /*by*/) {}
};

}  // namespace faultline::faults
