#include "faults/process/managed.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "faults/core/duration.h"
#include "faults/core/errors.h"
#include "faults/process/output_excerpt.h"
#include "faults/process/proc.h"
#include "faults/process/spawn.h"
#include "faults/syscall/interceptor.h"
#include "faults/syscall/launch.h"

namespace faultline::faults::process {
namespace {

// glibc 2.36 declares these in <sys/pidfd.h> without C linkage, so C++ cannot link them; the
// system calls themselves are stable.
int pidfd_open(pid_t pid, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}
int pidfd_send_signal(int pidfd, int sig, siginfo_t* info, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags));
}

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

}  // namespace

// ---- ManagedProcess ------------------------------------------------------------------------

const char* ToString(ProcessEvent::Kind k) {
  switch (k) {
    case ProcessEvent::Kind::kStart:
      return "start";
    case ProcessEvent::Kind::kAdopt:
      return "adopt";
    case ProcessEvent::Kind::kExit:
      return "exit";
  }
  return "?";
}

namespace {

std::string ExitCause(int status) {
  if (status < 0) return "exited (status unknown: adopted, not the agent's child)";
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* abbrev = sigabbrev_np(WTERMSIG(status));
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + (abbrev ? abbrev : "?") +
           ")" + (WCOREDUMP(status) ? ", core dumped" : "");
  }
  return "ended with wait status " + std::to_string(status);
}

// Signals that do not end a process by default: a fault sending one is no reason for an exit.
bool Terminates(int signal) {
  switch (signal) {
    case 0:
    case SIGSTOP:
    case SIGCONT:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
    case SIGCHLD:
    case SIGURG:
    case SIGWINCH:
      return false;
    default:
      return true;
  }
}

}  // namespace

std::vector<ProcessEvent> ManagedProcess::Events() const {
  std::lock_guard lk(mu_);
  return events_;
}

void ManagedProcess::RecordLocked(ProcessEvent e) {
  events_.push_back(std::move(e));
  if (events_.size() > kMaxEvents) events_.erase(events_.begin());
}

off_t ManagedProcess::LogSizeLocked() const {
  struct stat st {};
  if (spec_.log.empty() || ::stat(spec_.log.c_str(), &st) != 0) return 0;
  return st.st_size;
}

void ManagedProcess::NoteSignal(pid_t pid, int signal, const std::string& by) {
  std::lock_guard lk(mu_);
  if (pid == 0 || pid != pid_ || !Terminates(signal)) return;
  noted_signal_ = signal;
  const char* abbrev = sigabbrev_np(signal);
  noted_by_ = by + " (" + (abbrev ? abbrev : std::to_string(signal)) + ")";
}

void ManagedProcess::NoteKilled(pid_t pid, const std::string& by) {
  std::lock_guard lk(mu_);
  if (pid <= 0) return;
  if (pid == pid_) {
    noted_signal_ = SIGKILL;
    noted_by_ = by + " (KILL)";
    return;
  }
  for (auto it = events_.rbegin(); it != events_.rend(); ++it) {
    if (it->kind != ProcessEvent::Kind::kExit || it->pid != pid) continue;
    // Only the exit the kill caused: one that ended otherwise was not this fault's doing.
    if (!it->expected && (it->cause.starts_with("killed by signal 9 ") ||
                          it->cause.starts_with("exited (status unknown"))) {
      it->expected = true;
      it->expected_by = by + " (KILL)";
    }
    return;
  }
}

ManagedProcess::ManagedProcess(ManagedSpec spec, std::filesystem::path state_dir)
    : spec_(std::move(spec)), state_dir_(std::move(state_dir)) {
  wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_) ThrowErrno("managed " + spec_.name + ": eventfd");
  next_backoff_ = spec_.backoff;
  std::ifstream in(start_args_file());
  json j = in ? json::parse(in, nullptr, false) : json();
  if (j.is_array()) {
    for (const auto& a : j) {
      if (a.is_string()) start_args_.push_back(a.get<std::string>());
    }
  }
  monitor_ = std::thread([this] { Monitor(); });
}

ManagedProcess::~ManagedProcess() {
  {
    std::lock_guard lk(mu_);
    quit_ = true;
  }
  Wake();
  monitor_.join();
}

std::filesystem::path ManagedProcess::state_file() const {
  return state_dir_ / (spec_.name + ".json");
}

std::filesystem::path ManagedProcess::start_args_file() const {
  return state_dir_ / (spec_.name + ".start-args.json");
}

void ManagedProcess::SetStartArgs(std::vector<std::string> args) {
  std::lock_guard lk(mu_);
  std::error_code ec;
  std::filesystem::create_directories(state_dir_, ec);
  auto tmp = start_args_file();
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json(args).dump() << "\n";
    if (!out) throw FaultError("managed " + spec_.name + ": cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, start_args_file());
  start_args_ = std::move(args);
}

std::vector<std::string> ManagedProcess::Argv() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> argv = spec_.argv;
  argv.insert(argv.end(), start_args_.begin(), start_args_.end());
  return argv;
}

void ManagedProcess::Wake() {
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_.get(), &one, sizeof(one));
  (void)ignored;
}

pid_t ManagedProcess::Pid() const {
  std::lock_guard lk(mu_);
  return pid_;
}
uint64_t ManagedProcess::StartTime() const {
  std::lock_guard lk(mu_);
  return start_time_;
}
bool ManagedProcess::adopted() const {
  std::lock_guard lk(mu_);
  return adopted_;
}
int ManagedProcess::restarts() const {
  std::lock_guard lk(mu_);
  return restarts_;
}
int ManagedProcess::last_status() const {
  std::lock_guard lk(mu_);
  return last_status_;
}

void ManagedProcess::WriteStateLocked() {
  std::error_code ec;
  std::filesystem::create_directories(state_dir_, ec);
  json j{{"name", spec_.name},        {"pid", pid_},        {"start_time", start_time_},
         {"log_offset", log_offset_}, {"argv", spec_.argv}, {"keeper", keeper_.string()}};
  auto tmp = state_file();
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump() << "\n";
    if (!out) throw FaultError("managed " + spec_.name + ": cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, state_file());
}

bool ManagedProcess::AdoptLocked() {
  std::ifstream in(state_file());
  if (!in) return false;
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  pid_t pid = j.value("pid", 0);
  uint64_t start = j.value("start_time", uint64_t{0});
  if (pid <= 0 || !SameProcess(pid, start)) return false;
  sys::UniqueFd fd(pidfd_open(pid, 0));
  // Checked again after opening: the pidfd now pins this exact process.
  if (!fd || !SameProcess(pid, start)) return false;
  pid_ = pid;
  start_time_ = start;
  pidfd_ = std::move(fd);
  own_child_ = false;
  adopted_ = true;
  keeper_ = j.value("keeper", std::string());
  log_offset_ = j.value("log_offset", off_t{0});
  noted_signal_ = 0;
  RecordLocked({ProcessEvent::Kind::kAdopt,
                std::chrono::system_clock::now(),
                pid_,
                "running when the agent started",
                false,
                "",
                {},
                ""});
  // Its filter's keeper kept the process running while no agent was attached; take over.
  if (!spec_.syscalls.empty()) AttachInterceptorLocked();
  return true;
}

void ManagedProcess::AttachInterceptorLocked() {
  if (keeper_.empty()) throw FaultError("managed " + spec_.name + ": no filter keeper recorded");
  auto attached = syscalls::AttachKeeper(keeper_.string());
  interceptor_ = std::make_shared<syscalls::SyscallInterceptor>(
      std::move(attached.listener), std::move(attached.connection), spec_.syscalls);
}

std::shared_ptr<syscalls::SyscallInterceptor> ManagedProcess::interceptor() const {
  std::lock_guard lk(mu_);
  return interceptor_;
}

void ManagedProcess::SpawnLocked() {
  std::string who = "managed " + spec_.name;
  interceptor_.reset();
  keeper_.clear();
  if (!spec_.syscalls.empty()) {
    // The keeper binds its socket here, before the first state file would create the directory.
    std::filesystem::create_directories(state_dir_);
    const std::string stem = spec_.name + ".keeper.";
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(state_dir_, ec)) {
      // Sockets of earlier processes' keepers: gone with them, or going (a SIGKILLed keeper
      // cannot unlink its own).
      if (e.path().filename().string().starts_with(stem)) std::filesystem::remove(e.path(), ec);
    }
    char nonce[9];
    snprintf(nonce, sizeof nonce, "%08x", std::random_device{}());
    keeper_ = state_dir_ / (stem + nonce + ".sock");
  }
  // Under a seccomp filter the loader execs the real argv; its keeper serves the filter to us.
  std::vector<std::string> own = spec_.argv;
  own.insert(own.end(), start_args_.begin(), start_args_.end());
  std::vector<std::string> argv =
      spec_.syscalls.empty()
          ? own
          : syscalls::NotifyChannel::WrapArgvWithKeeper(own, spec_.syscalls, keeper_.string());
  ExecPlan plan = MakePlan(argv, spec_.env, spec_.cwd, spec_.netns, spec_.log, who);
  const off_t log_offset = LogSizeLocked();
  pid_t pid = Spawn(plan, who);
  sys::UniqueFd fd(pidfd_open(pid, 0));
  if (!fd) {
    int err = errno;
    ::kill(pid, SIGKILL);  // our unreaped child
    ::waitpid(pid, nullptr, 0);
    ThrowErrno(who + ": pidfd_open", err);
  }
  auto info = ReadProc(pid);
  pid_ = pid;
  start_time_ = info ? info->start_time : 0;
  pidfd_ = std::move(fd);
  own_child_ = true;
  adopted_ = false;
  started_at_ = Clock::now();
  log_offset_ = log_offset;
  noted_signal_ = 0;
  RecordLocked({ProcessEvent::Kind::kStart,
                std::chrono::system_clock::now(),
                pid_,
                spawning_by_policy_ ? "restart policy" : "agent",
                false,
                "",
                {},
                ""});
  WriteStateLocked();
  if (!spec_.syscalls.empty()) AttachInterceptorLocked();
}

void ManagedProcess::Start() {
  {
    std::lock_guard lk(mu_);
    want_running_ = true;
    restart_at_.reset();
    if (pid_ != 0) return;
    if (!AdoptLocked()) SpawnLocked();
  }
  Wake();
}

void ManagedProcess::Monitor() {
  std::unique_lock lk(mu_);
  while (!quit_) {
    int pfd = pidfd_.get();
    int timeout = -1;
    if (restart_at_) {
      auto left = std::chrono::duration_cast<milliseconds>(*restart_at_ - Clock::now()).count();
      timeout = static_cast<int>(std::max<long>(left, 0));
    }
    lk.unlock();
    pollfd fds[2] = {{wake_fd_.get(), POLLIN, 0}, {pfd, POLLIN, 0}};
    int n = ::poll(fds, pfd >= 0 ? 2 : 1, timeout);
    uint64_t drain;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      ssize_t ignored = ::read(wake_fd_.get(), &drain, sizeof(drain));
      (void)ignored;
    }
    lk.lock();
    if (quit_) break;
    // Only this thread clears pidfd_, so the fd polled is still the current process's.
    if (n > 0 && pfd >= 0 && (fds[1].revents & (POLLIN | POLLHUP)) && pidfd_.get() == pfd) {
      int st = -1;
      if (own_child_) {
        // WNOHANG: where SIGCHLD is ignored the kernel reaps children itself and a blocking
        // waitpid would hang (with the lock held) until every child is gone.
        for (int tries = 0; tries < 100; ++tries) {
          int s = 0;
          pid_t r = ::waitpid(pid_, &s, WNOHANG);
          if (r == pid_) st = s;
          if (r != 0) break;
          std::this_thread::sleep_for(milliseconds(1));
        }
      }
      last_status_ = st;
      bool failed = !(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
      auto ran = Clock::now() - started_at_;
      ProcessEvent exit{ProcessEvent::Kind::kExit,
                        std::chrono::system_clock::now(),
                        pid_,
                        ExitCause(st),
                        false,
                        "",
                        {},
                        ""};
      if (!stop_reason_.empty()) {
        exit.expected = true;
        exit.expected_by = stop_reason_;
      } else if (noted_signal_ != 0) {
        exit.expected = true;
        exit.expected_by = noted_by_;
      }
      stop_reason_.clear();
      noted_signal_ = 0;
      const off_t from = log_offset_;
      const pid_t dead = pid_;
      const auto at = exit.at;
      // Recorded before anyone waiting for the exit (Stop) wakes, so it is there when they look.
      RecordLocked(std::move(exit));
      pid_ = 0;
      start_time_ = 0;
      pidfd_.reset();
      cv_.notify_all();
      // What it wrote before it ended, read without the lock (a large log takes a while), then
      // added to its exit event.
      if (!spec_.log.empty()) {
        lk.unlock();
        OutputExcerpt out = ReadOutputExcerpt(spec_.log, from);
        lk.lock();
        for (auto it = events_.rbegin(); it != events_.rend(); ++it) {
          if (it->kind == ProcessEvent::Kind::kExit && it->pid == dead && it->at == at) {
            it->fatal_lines = std::move(out.fatal_lines);
            it->output_tail = std::move(out.tail);
            break;
          }
        }
      }
      bool again = want_running_ && (spec_.restart == RestartPolicy::kAlways ||
                                     (spec_.restart == RestartPolicy::kOnFailure && failed));
      if (again) {
        // A process that ran a while before dying starts over at the short delay.
        if (ran > spec_.max_backoff) next_backoff_ = spec_.backoff;
        restart_at_ = Clock::now() + next_backoff_;
        next_backoff_ = std::min(next_backoff_ * 2, spec_.max_backoff);
      }
    }
    if (restart_at_ && Clock::now() >= *restart_at_) {
      restart_at_.reset();
      if (want_running_ && pid_ == 0) {
        try {
          spawning_by_policy_ = true;
          SpawnLocked();
          spawning_by_policy_ = false;
          ++restarts_;
        } catch (const std::exception&) {
          spawning_by_policy_ = false;
          restart_at_ = Clock::now() + next_backoff_;
          next_backoff_ = std::min(next_backoff_ * 2, spec_.max_backoff);
        }
      }
    }
  }
}

void ManagedProcess::Stop(int signal, nanoseconds grace) {
  std::unique_lock lk(mu_);
  want_running_ = false;
  restart_at_.reset();
  if (pid_ != 0) {
    if (stop_reason_.empty()) stop_reason_ = "agent stop";
    pidfd_send_signal(pidfd_.get(), signal, nullptr, 0);
    // A paused (SIGSTOPped) process only acts on the signal once continued.
    if (signal != SIGSTOP && signal != SIGKILL)
      pidfd_send_signal(pidfd_.get(), SIGCONT, nullptr, 0);
    if (!cv_.wait_for(lk, grace, [&] { return pid_ == 0; })) {
      pidfd_send_signal(pidfd_.get(), SIGKILL, nullptr, 0);
      if (!cv_.wait_for(lk, std::chrono::seconds(10), [&] { return pid_ == 0; })) {
        throw FaultError("managed " + spec_.name + ": pid " + std::to_string(pid_) +
                         " did not exit 10s after SIGKILL");
      }
    }
  }
  std::error_code ec;
  std::filesystem::remove(state_file(), ec);
}

bool ManagedProcess::WaitReady(nanoseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    pid_t pid;
    bool coming;  // running, or a restart is due
    {
      std::lock_guard lk(mu_);
      pid = pid_;
      coming = pid_ != 0 || (want_running_ && restart_at_.has_value());
    }
    // Exited and nothing will start it again: waiting longer cannot help.
    if (!coming) return false;
    if (pid != 0 && ProbeOnce(spec_.ready, spec_.netns)) {
      // The probe may have been answered by a process that died meanwhile: check again.
      std::lock_guard lk(mu_);
      if (pid_ == pid) return true;
    }
    if (Clock::now() >= deadline) return false;
    auto step =
        spec_.ready.kind == ReadinessProbe::Kind::kNone ? milliseconds(10) : spec_.ready.interval;
    std::this_thread::sleep_for(
        std::min<nanoseconds>(step, deadline - Clock::now() + milliseconds(1)));
  }
}

nanoseconds ManagedProcess::Restart(int signal, nanoseconds grace) {
  auto t0 = Clock::now();
  {
    std::lock_guard lk(mu_);
    if (pid_ != 0) stop_reason_ = "agent restart";
  }
  Stop(signal, grace);
  Start();
  if (!WaitReady()) {
    throw FaultError("managed " + spec_.name + ": not ready " +
                     FormatDuration(spec_.ready.timeout) + " after restart" +
                     (spec_.log.empty() ? "" : " (see " + spec_.log + ")"));
  }
  return Clock::now() - t0;
}

// ---- ManagedSet ----------------------------------------------------------------------------

ManagedSet::ManagedSet(std::vector<ManagedSpec> specs, std::filesystem::path state_dir) {
  for (auto& s : specs) procs_.push_back(std::make_unique<ManagedProcess>(std::move(s), state_dir));
}

std::unique_ptr<ManagedSet> ManagedSet::FromFile(const std::filesystem::path& config,
                                                 const std::filesystem::path& state_dir) {
  std::ifstream in(config);
  if (!in) throw ValidationError({{"--managed-config", "cannot read " + config.string()}});
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return std::make_unique<ManagedSet>(ParseManagedConfig(ss.str()), state_dir);
  } catch (const ValidationError& e) {
    FieldErrors errs = e.errors();
    for (auto& fe : errs) fe.field = config.string() + ": " + fe.field;
    throw ValidationError(errs);
  }
}

void ManagedSet::StartAll() {
  for (auto& p : procs_) p->Start();
}

ManagedProcess& ManagedSet::Get(std::string_view name) const {
  for (const auto& p : procs_) {
    if (p->spec().name == name) return *p;
  }
  std::string known;
  for (const auto& p : procs_) known += (known.empty() ? "" : ", ") + p->spec().name;
  throw FaultError("no managed process named \"" + std::string(name) +
                   "\" (managed: " + (known.empty() ? "none" : known) + ")");
}

std::vector<std::string> ManagedSet::Names() const {
  std::vector<std::string> out;
  for (const auto& p : procs_) out.push_back(p->spec().name);
  return out;
}

int ManagedSet::Pid(std::string_view name) const { return Get(name).Pid(); }

nanoseconds ManagedSet::Restart(std::string_view name, int signal, nanoseconds grace) {
  return Get(name).Restart(signal, grace);
}

nanoseconds ManagedSet::Start(std::string_view name) {
  auto& p = Get(name);
  auto t0 = Clock::now();
  p.Start();
  if (!p.WaitReady()) throw FaultError("managed " + std::string(name) + ": not ready after start");
  return Clock::now() - t0;
}

void ManagedSet::Stop(std::string_view name, int signal, nanoseconds grace) {
  Get(name).Stop(signal, grace);
}

std::vector<std::string> ManagedSet::Argv(std::string_view name) const { return Get(name).Argv(); }

void ManagedSet::StartWith(std::string_view name, std::vector<std::string> extra_args) {
  auto& p = Get(name);
  p.SetStartArgs(std::move(extra_args));
  p.Start();
}

void ManagedSet::NoteSignal(int pid, int signal, const std::string& by) {
  for (auto& p : procs_) p->NoteSignal(pid, signal, by);
}

void ManagedSet::NoteKilled(int pid, const std::string& by) {
  for (auto& p : procs_) p->NoteKilled(pid, by);
}

std::shared_ptr<syscalls::SyscallInterceptor> ManagedSet::Interceptor(std::string_view name) {
  return Get(name).interceptor();
}

}  // namespace faultline::faults::process
