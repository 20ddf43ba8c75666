#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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
};

}  // namespace faultline::faults
