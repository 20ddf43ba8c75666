#pragma once

// Managed (supervised) processes: children the agent starts, watches, restarts and re-adopts
// after its own restart.
//
// Config file format (the agent's --managed-config FILE), JSON:
//
//   {
//     "processes": [
//       {
//         "name": "etcd",                          // required, [A-Za-z0-9_.-]+, unique
//         "argv": ["/usr/bin/etcd", "--name", "e1"],  // required; argv[0] is an absolute path
//         "env": {"GOMAXPROCS": "1"},              // added to the agent's environment
//         "cwd": "/var/lib/etcd",                  // default "/"
//         "netns": "/run/netns/lab-e1",            // setns(CLONE_NEWNET) before exec; optional
//         "log": "/var/log/etcd.log",              // stdout+stderr, appended; default /dev/null
//         "overlay": "/var/lib/etcd",              // FUSE overlay mounted first (IO faults)
//         "syscalls": ["fdatasync", "fsync"],      // routed to the agent (syscall faults)
//         "restart": "on-failure",                 // never | on-failure | always (default never)
//         "backoff": "200ms", "max_backoff": "10s",  // restart delay, doubling up to the max
//         "stop_signal": 15, "stop_grace": "10s",  // how Stop() ends it before SIGKILL
//         "ready": {                               // readiness probe, at most one kind
//           "tcp": "10.0.0.2:2379",                //   TCP connect succeeds, or
//           "http": "http://10.0.0.2:2379/health", //   GET answers 2xx, or
//           "command": ["/bin/true"],              //   the command exits 0
//           "interval": "100ms", "timeout": "30s"
//         }
//       }
//     ]
//   }
//
// Probes run in the process's network namespace, so a loopback address means its loopback.
// A bare top-level array of process objects is accepted too.
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
#include "faults/sys/unique_fd.h"

namespace faultline::faults::syscalls {
class SyscallInterceptor;
}

namespace faultline::faults::process {

enum class RestartPolicy { kNever, kOnFailure, kAlways };

struct ReadinessProbe {
  enum class Kind { kNone, kTcp, kHttp, kCommand };
  Kind kind = Kind::kNone;
  std::string host;  // tcp and http
  int port = 0;
  std::string path = "/";  // http
  std::string url;         // http, as written
  std::vector<std::string> command;
  std::chrono::nanoseconds interval = std::chrono::milliseconds(100);
  std::chrono::nanoseconds timeout = std::chrono::seconds(30);
};

struct ManagedSpec {
  std::string name;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string cwd = "/";
  std::string netns;  // path of a network namespace file, e.g. /run/netns/NAME
  std::string log;    // empty: /dev/null
  // A directory the agent covers with its FUSE overlay before starting the process (IO faults
  // act through it), e.g. etcd's data dir. Absolute; optional.
  std::string overlay;
  // Syscalls to route through a seccomp user-notification filter (faultline-seccomp-exec, keeper
  // mode) so syscall faults can act on them, e.g. ["fdatasync", "fsync"]. Optional.
  std::vector<std::string> syscalls;
  RestartPolicy restart = RestartPolicy::kNever;
  std::chrono::nanoseconds backoff = std::chrono::milliseconds(200);
  std::chrono::nanoseconds max_backoff = std::chrono::seconds(10);
  int stop_signal = 15;
  std::chrono::nanoseconds stop_grace = std::chrono::seconds(10);
  ReadinessProbe ready;
};

// Parses the config format above. Throws ValidationError naming every bad field
// ("processes[1].argv: must not be empty") at once.
std::vector<ManagedSpec> ParseManagedConfig(std::string_view json_text);
// The inverse of ParseManagedConfig (what the lab writes for its agents).
std::string ManagedConfigToJson(const std::vector<ManagedSpec>& specs);

// One probe attempt, in `netns` (a path, or empty for the caller's namespace).
bool ProbeOnce(const ReadinessProbe& probe, const std::string& netns);

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
  // The syscall interceptor of the current process (spec.syscalls), or nullptr. Replaced when
  // the process is started again.
  std::shared_ptr<syscalls::SyscallInterceptor> interceptor() const;
  const ManagedSpec& spec() const { return spec_; }
  std::filesystem::path state_file() const;

 private:
  void SpawnLocked();
  bool AdoptLocked();
  // Connects to the keeper of the current process's seccomp filter (spec.syscalls).
  void AttachInterceptorLocked();
  void WriteStateLocked();
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
  std::shared_ptr<syscalls::SyscallInterceptor> Interceptor(std::string_view name) override;
  void NoteSignal(int pid, int signal, const std::string& by) override;

 private:
  std::vector<std::unique_ptr<ManagedProcess>> procs_;
};

}  // namespace faultline::faults::process
