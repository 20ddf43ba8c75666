#pragma once

// Managed (supervised) processes: children the agent starts, watches, restarts and re-adopts
// after its own restart. What to supervise is the config (managed_config.h); how a child is
// started (spawn.h) and probed (readiness.h) live beside this file.
//
// Children are NOT tied to the supervisor's life (no PR_SET_PDEATHSIG): etcd must outlive an
// agent crash. Each start writes STATE_DIR/NAME.json with pid and /proc start time; the next
// supervisor re-adopts a process still running with that identity instead of starting a copy.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "faults/core/supervisor.h"
#include "faults/process/managed_config.h"
#include "faults/process/readiness.h"
#include "faults/sys/unique_fd.h"

namespace faultline::faults::syscalls {
class SyscallInterceptor;
}

namespace faultline::faults::process {

// Something that happened to a managed process: what a liveness check reads. An exit carries
// its cause, whether the agent meant it (its own stop, or a fault that signalled the process),
// and what the process wrote before it died (from its log, so only with a `log`).
struct ProcessEvent {
  enum class Kind { kStart, kAdopt, kExit };
  Kind kind = Kind::kStart;
  std::chrono::system_clock::time_point at;
  pid_t pid = 0;
  // start: "agent" (Start/Restart) or "restart policy"; exit: "exited with status 2",
  // "killed by signal 9 (KILL)", "exited (status unknown: adopted, not the agent's child)".
  std::string cause;
  bool expected = false;    // exit: the agent stopped it, or a fault's signal preceded it
  std::string expected_by;  // "agent stop", "fault process/kill (KILL)", ...
  std::vector<std::string> fatal_lines;
  std::string output_tail;
};
const char* ToString(ProcessEvent::Kind k);

// One supervised process. Thread-safe. Destroying it stops watching but leaves the process
// running (see above); call Stop() to end it.
class ManagedProcess {
 public:
  ManagedProcess(ManagedSpec spec, std::filesystem::path state_dir);
  ~ManagedProcess();
  ManagedProcess(const ManagedProcess&) = delete;
  ManagedProcess& operator=(const ManagedProcess&) = delete;

  // Starts the process, or re-adopts the one recorded in the state file if it is still the
  // same process. Does not wait for readiness. Throws FaultError if exec fails.
  void Start();
  // Sends `signal` (SIGCONT too, so a paused process can act on it), waits up to `grace`, then
  // SIGKILLs. Disables automatic restarts until the next Start(). No-op if not running.
  void Stop(int signal, std::chrono::nanoseconds grace);
  void Stop() { Stop(spec_.stop_signal, spec_.stop_grace); }
  // Stop, start again with the same argv/env/cwd/netns, wait until ready; returns the time
  // from sending the signal until the probe passed. Throws FaultError if it never got ready.
  std::chrono::nanoseconds Restart(int signal, std::chrono::nanoseconds grace);
  // Waits until the readiness probe passes (true) or `timeout` passes (false). Without a
  // probe, ready means running.
  bool WaitReady(std::chrono::nanoseconds timeout);
  bool WaitReady() { return WaitReady(spec_.ready.timeout); }

  pid_t Pid() const;
  // /proc start time of the current process (0 if none).
  uint64_t StartTime() const;
  // True if the current process was found running at Start() rather than spawned.
  bool adopted() const;
  // Automatic restarts performed by the restart policy.
  int restarts() const;
  // Raw wait status of the last exit of an own child (-1 if unknown, e.g. adopted).
  int last_status() const;
  // Starts, adoptions and exits, oldest first (the last kMaxEvents).
  std::vector<ProcessEvent> Events() const;
  static constexpr size_t kMaxEvents = 64;
  // A fault is about to send `signal` to `pid`: if that is this process and it ends after it,
  // its exit is the fault's doing (`by` says which), not a crash.
  void NoteSignal(pid_t pid, int signal, const std::string& by);
  // `pid` was SIGKILLed by a fault elsewhere: its exit, recorded or still to come, is meant.
  void NoteKilled(pid_t pid, const std::string& by);
  // The syscall interceptor of the current process (spec.syscalls), or nullptr. Replaced when
  // the process is started again.
  std::shared_ptr<syscalls::SyscallInterceptor> interceptor() const;
  const ManagedSpec& spec() const { return spec_; }
  std::filesystem::path state_file() const;
  // Arguments added after spec().argv from the next start on (process/rejoin: an etcd that
  // comes back as a new member needs --initial-cluster-state existing). Kept in the state dir,
  // so an agent restarted later starts the process the same way.
  void SetStartArgs(std::vector<std::string> args);
  // What the process is started with: spec().argv and the start args.
  std::vector<std::string> Argv() const;

 private:
  void SpawnLocked();
  bool AdoptLocked();
  // Connects to the keeper of the current process's seccomp filter (spec.syscalls).
  void AttachInterceptorLocked();
  void WriteStateLocked();
  std::filesystem::path start_args_file() const;
  void Monitor();
  void Wake();
  void RecordLocked(ProcessEvent e);
  // Where this process's output starts in the log (its size at spawn).
  off_t LogSizeLocked() const;

  const ManagedSpec spec_;
  const std::filesystem::path state_dir_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  pid_t pid_ = 0;
  uint64_t start_time_ = 0;
  sys::UniqueFd pidfd_;
  bool own_child_ = false;
  bool adopted_ = false;
  bool want_running_ = false;
  bool quit_ = false;
  int restarts_ = 0;
  int last_status_ = -1;
  std::chrono::nanoseconds next_backoff_{0};
  std::optional<std::chrono::steady_clock::time_point> restart_at_;
  std::chrono::steady_clock::time_point started_at_;
  off_t log_offset_ = 0;
  bool spawning_by_policy_ = false;
  // A terminating signal a fault sent the current process (0: none), and which fault.
  int noted_signal_ = 0;
  std::string noted_by_;
  std::string stop_reason_;  // set while the agent itself stops the process
  std::vector<ProcessEvent> events_;
  std::vector<std::string> start_args_;

  std::shared_ptr<syscalls::SyscallInterceptor> interceptor_;
  // The socket of the current process's filter keeper. A fresh name for every start: the
  // keeper of the process before a restart may still be serving (or closing) its socket while
  // the new one starts, and attaching to it would hand us a dead process's filter.
  std::filesystem::path keeper_;
  sys::UniqueFd wake_fd_;  // eventfd: tells the monitor something changed
  std::thread monitor_;
};

// The agent's managed processes, as fault families see them.
class ManagedSet : public Supervisor {
 public:
  ManagedSet(std::vector<ManagedSpec> specs, std::filesystem::path state_dir);
  // Loads the config file; throws ValidationError (prefixed with the file name) on bad input.
  static std::unique_ptr<ManagedSet> FromFile(const std::filesystem::path& config,
                                              const std::filesystem::path& state_dir);

  // Starts (or re-adopts) every process; does not wait for readiness.
  void StartAll();
  ManagedProcess& Get(std::string_view name) const;

  std::vector<std::string> Names() const override;
  int Pid(std::string_view name) const override;
  std::chrono::nanoseconds Restart(std::string_view name, int signal,
                                   std::chrono::nanoseconds grace) override;
  std::chrono::nanoseconds Start(std::string_view name) override;
  void Stop(std::string_view name, int signal, std::chrono::nanoseconds grace) override;
  std::vector<std::string> Argv(std::string_view name) const override;
  void StartWith(std::string_view name, std::vector<std::string> extra_args) override;
  std::shared_ptr<syscalls::SyscallInterceptor> Interceptor(std::string_view name) override;
  void NoteSignal(int pid, int signal, const std::string& by) override;
  void NoteKilled(int pid, const std::string& by) override;

 private:
  std::vector<std::unique_ptr<ManagedProcess>> procs_;
};

}  // namespace faultline::faults::process
