#include "faults/time/tracer.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "faults/core/errors.h"
#include "faults/process/proc.h"

namespace faultline::faults::time {
namespace {

std::vector<pid_t> Tasks(pid_t pid) {
  std::vector<pid_t> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') out.push_back(std::stoi(e->d_name));
  }
  ::closedir(d);
  return out;
}

std::string Who(pid_t pid) {
  auto info = process::ReadProc(pid);
  return std::to_string(pid) + (info ? " (" + info->comm + ")" : "");
}

}  // namespace

pid_t TracerOf(pid_t pid, pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("TracerPid:", 0) == 0) return std::stoi(line.substr(10));
  }
  return 0;
}

StoppedProcess::StoppedProcess(pid_t pid, std::chrono::milliseconds timeout) : pid_(pid) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  try {
    // Threads created while we attach show up in the next listing; once every listed thread
    // is stopped none can create another, so the loop ends.
    for (bool added = true; added;) {
      added = false;
      auto tasks = Tasks(pid);
      if (tasks.empty()) throw FaultError("process " + std::to_string(pid) + " exited");
      size_t first_new = threads_.size();
      for (pid_t tid : tasks) {
        if (std::any_of(threads_.begin(), threads_.end(),
                        [&](const Thread& t) { return t.tid == tid; })) {
          continue;
        }
        if (pid_t tracer = TracerOf(pid, tid); tracer != 0) {
          throw FaultError("process " + Who(pid) + " is already traced by " + Who(tracer) +
                           " (thread " + std::to_string(tid) + "); detach it first");
        }
        if (::ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
          if (errno == ESRCH) continue;  // the thread exited meanwhile
          int err = errno;
          if (pid_t tracer = TracerOf(pid, tid); tracer != 0) {
            throw FaultError("process " + Who(pid) + " is already traced by " + Who(tracer));
          }
          ThrowErrno("ptrace(PTRACE_SEIZE) of thread " + std::to_string(tid) + " of " + Who(pid),
                     err);
        }
        threads_.push_back({tid});
        added = true;
        if (::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0 && errno != ESRCH) {
          ThrowErrno("ptrace(PTRACE_INTERRUPT) of thread " + std::to_string(tid));
        }
      }
      for (size_t i = first_new; i < threads_.size(); ++i) Wait(threads_[i], deadline);
    }
    if (std::none_of(threads_.begin(), threads_.end(), [](const Thread& t) { return t.alive; })) {
      throw FaultError("process " + std::to_string(pid) + " exited");
    }
  } catch (...) {
    DetachAll();
    throw;
  }
}

StoppedProcess::~StoppedProcess() { DetachAll(); }

void StoppedProcess::Record(Thread& t, int status) {
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    t.alive = false;
    return;
  }
  int sig = WSTOPSIG(status);
  // A signal-delivery stop (no ptrace event): the signal is held; give it back at detach.
  // SIGTRAP is the single-step trap, not a signal to deliver.
  if ((status >> 16) == 0 && sig != SIGTRAP) t.signals.push_back(sig);
}

void StoppedProcess::Wait(Thread& t, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(t.tid, &status, __WALL | WNOHANG);
    if (r == t.tid) {
      Record(t, status);
      return;
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == ECHILD) {
        t.alive = false;
        return;
      }
      ThrowErrno("waitpid(" + std::to_string(t.tid) + ")");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      auto info = process::ReadProc(t.tid);
      throw FaultError("thread " + std::to_string(t.tid) + " of " + Who(pid_) +
                       " did not stop in time (state " + std::string(1, info ? info->state : '?') +
                       "); nothing changed");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

std::vector<pid_t> StoppedProcess::Threads() const {
  std::vector<pid_t> out;
  for (const auto& t : threads_) {
    if (t.alive) out.push_back(t.tid);
  }
  return out;
}

StoppedProcess::Thread& StoppedProcess::Find(pid_t tid) {
  for (auto& t : threads_) {
    if (t.tid == tid) return t;
  }
  throw FaultError("thread " + std::to_string(tid) + " is not held");
}

uint64_t StoppedProcess::Rip(pid_t tid) const {
  user_regs_struct regs{};
  if (::ptrace(PTRACE_GETREGS, tid, nullptr, &regs) != 0) {
    ThrowErrno("ptrace(PTRACE_GETREGS) of thread " + std::to_string(tid));
  }
  return regs.rip;
}

int StoppedProcess::StepOutOf(pid_t tid, uint64_t lo, uint64_t hi, int max_steps) {
  Thread& t = Find(tid);
  for (int steps = 0; steps < max_steps && t.alive; ++steps) {
    uint64_t rip = Rip(tid);
    if (rip < lo || rip >= hi) return steps;
    if (::ptrace(PTRACE_SINGLESTEP, tid, nullptr, nullptr) != 0) {
      if (errno == ESRCH) {
        t.alive = false;
        break;
      }
      ThrowErrno("ptrace(PTRACE_SINGLESTEP) of thread " + std::to_string(tid));
    }
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(tid, &status, __WALL);
    } while (r < 0 && errno == EINTR);
    if (r != tid) {
      t.alive = false;
      break;
    }
    Record(t, status);
  }
  if (!t.alive) return 0;
  uint64_t rip = Rip(tid);
  if (rip >= lo && rip < hi) {
    throw FaultError("thread " + std::to_string(tid) + " did not leave the patched code in " +
                     std::to_string(max_steps) + " steps");
  }
  return max_steps;
}

void StoppedProcess::DetachAll() {
  for (auto& t : threads_) {
    if (!t.alive) continue;
    int first = t.signals.empty() ? 0 : t.signals.front();
    if (::ptrace(PTRACE_DETACH, t.tid, nullptr, reinterpret_cast<void*>(intptr_t{first})) != 0) {
      continue;  // gone; the kernel detached it
    }
    for (size_t i = 1; i < t.signals.size(); ++i) {
      ::syscall(SYS_tgkill, pid_, t.tid, t.signals[i]);
    }
  }
  threads_.clear();
}

ProcessMemory::ProcessMemory(pid_t pid)
    : pid_(pid),
      fd_(::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDWR | O_CLOEXEC)) {
  if (!fd_) ThrowErrno("open /proc/" + std::to_string(pid) + "/mem");
}

std::string ProcessMemory::Read(uint64_t addr, size_t n) const {
  std::string out(n, '\0');
  ssize_t r = ::pread(fd_.get(), out.data(), n, static_cast<off_t>(addr));
  if (r != static_cast<ssize_t>(n)) {
    ThrowErrno("read " + std::to_string(n) + " bytes of pid " + std::to_string(pid_) +
               " memory at 0x" + [&] {
                 char b[32];
                 snprintf(b, sizeof b, "%llx", static_cast<unsigned long long>(addr));
                 return std::string(b);
               }());
  }
  return out;
}

void ProcessMemory::Write(uint64_t addr, const std::string& bytes) const {
  ssize_t r = ::pwrite(fd_.get(), bytes.data(), bytes.size(), static_cast<off_t>(addr));
  if (r != static_cast<ssize_t>(bytes.size())) {
    ThrowErrno("write " + std::to_string(bytes.size()) + " bytes into pid " + std::to_string(pid_) +
               " memory");
  }
}

}  // namespace faultline::faults::time
