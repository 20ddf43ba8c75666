#include "faults/process/process_faults.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "faults/core/duration.h"
#include "faults/process/member_dirs.h"
#include "faults/process/proc.h"
#include "faults/process/spec.h"
#include "faults/process/target.h"

namespace faultline::faults::process {
namespace {

using v1::ProcessFault;
using json = nlohmann::json;

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

int EffectiveSignal(const ProcessFault& f) {
  if (f.signal() != 0) return f.signal();
  switch (f.action()) {
    case ProcessFault::KILL:
      return SIGKILL;
    case ProcessFault::RESTART:
    case ProcessFault::REJOIN:
      return SIGTERM;
    case ProcessFault::PAUSE:
      return SIGSTOP;
    default:
      return 0;
  }
}

class ProcessFaultImpl : public Fault {
 public:
  ProcessFaultImpl(v1::FaultSpec spec, const FaultContext& ctx)
      : spec_(std::move(spec)), f_(spec_.process()), ctx_(ctx) {}

  std::string Kind() const override { return "process/" + ActionName(f_.action()); }

  bool OneShot() const override { return process::OneShot(f_); }

  void Prepare() override {
    if (!targets_.empty()) return;
    // Restart of a stopped managed process is still meaningful: it starts it.
    targets_ =
        ResolveTargets(f_.target(), spec_.seed(), ctx_, "process.target",
                       f_.action() == ProcessFault::RESTART || f_.action() == ProcessFault::REJOIN);
  }

  std::string State() const override {
    json j = json::array();
    for (const auto& t : targets_) {
      j.push_back({{"pid", t.pid}, {"start_time", t.start_time}, {"comm", t.comm}});
    }
    return json{{"targets", j}}.dump();
  }

  void LoadState(std::string_view state) {
    auto j = json::parse(state, nullptr, false);
    if (j.is_discarded() || !j.contains("targets")) return;
    for (const auto& t : j["targets"]) {
      targets_.push_back(
          {t.value("pid", 0), t.value("start_time", uint64_t{0}), t.value("comm", std::string())});
    }
    applied_ = true;
  }

  void Apply() override {
    if (applied_) return;
    switch (f_.action()) {
      case ProcessFault::RESTART: {
        if (ctx_.supervisor == nullptr) throw FaultError("restart needs a managed process");
        auto grace = FromProto(f_.grace());
        if (grace.count() == 0) grace = std::chrono::seconds(10);
        auto took = ctx_.supervisor->Restart(f_.target().managed(), EffectiveSignal(f_), grace);
        time_to_ready_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
        break;
      }
      case ProcessFault::REJOIN: {
        if (ctx_.supervisor == nullptr) throw FaultError("rejoin needs a managed process");
        const std::string& name = f_.target().managed();
        // Read before anything stops: a member whose state dirs cannot be named stays up.
        auto dirs = EtcdStateDirs(ctx_.supervisor->Argv(name));
        auto grace = FromProto(f_.grace());
        if (grace.count() == 0) grace = std::chrono::seconds(10);
        if (ctx_.supervisor->Pid(name) != 0) ++signalled_;
        ctx_.supervisor->Stop(name, EffectiveSignal(f_), grace);
        for (const auto& d : dirs) wiped_ += EmptyDirectory(d);
        {
          std::lock_guard lock(dirs_mu_);
          wiped_dirs_ = dirs;
        }
        break;
      }
      default:
        for (const auto& t : targets_) {
          // Re-check identity right before signalling: the pid may have been reused since Prepare.
          if (!SameProcess(t.pid, t.start_time)) continue;
          // A managed process ended by this signal did not crash: its supervisor says whose.
          if (ctx_.supervisor != nullptr)
            ctx_.supervisor->NoteSignal(t.pid, EffectiveSignal(f_), "fault " + Kind());
          if (::kill(t.pid, EffectiveSignal(f_)) == 0) {
            ++signalled_;
          } else if (errno != ESRCH) {
            ThrowErrno("kill(" + std::to_string(t.pid) + ", " + SignalName(EffectiveSignal(f_)) +
                       ")");
          }
        }
        if (signalled_ == 0 && !targets_.empty()) {
          throw FaultError("every target exited before it could be signalled");
        }
        if (f_.action() == ProcessFault::PAUSE) AwaitStopped();
        break;
    }
    applied_ = true;
  }

  void Revert() override {
    if (reverted_) return;
    if (f_.action() == ProcessFault::PAUSE) {
      for (const auto& t : targets_) {
        if (!SameProcess(t.pid, t.start_time)) continue;  // gone or reused: nothing to resume
        if (::kill(t.pid, SIGCONT) == 0) {
          ++resumed_;
        } else if (errno != ESRCH) {
          ThrowErrno("kill(" + std::to_string(t.pid) + ", SIGCONT)");
        }
      }
    } else if (f_.action() == ProcessFault::KILL && f_.target().has_managed() &&
               FromProto(f_.restart_after()).count() > 0 && ctx_.supervisor != nullptr &&
               applied_) {
      // A kill with automatic restart: the restart is the revert, due after restart_after.
      ctx_.supervisor->Start(f_.target().managed());
      ++resumed_;
    } else if (f_.action() == ProcessFault::REJOIN && ctx_.supervisor != nullptr && applied_) {
      ctx_.supervisor->StartWith(f_.target().managed(),
                                 {f_.start_args().begin(), f_.start_args().end()});
      ++resumed_;
    }
    reverted_ = true;
  }

  std::string Describe() const override {
    std::string what;
    switch (f_.action()) {
      case ProcessFault::PAUSE:
        what = "SIGSTOP (SIGCONT at end)";
        break;
      case ProcessFault::RESTART:
        what = "restart with " + SignalName(EffectiveSignal(f_));
        break;
      case ProcessFault::REJOIN: {
        what = "stop with " + SignalName(EffectiveSignal(f_)) + ", empty";
        std::lock_guard lock(dirs_mu_);
        for (const auto& d : wiped_dirs_) what += " " + d.string();
        if (wiped_dirs_.empty()) what += " its --data-dir";
        what += ", start at end";
        if (f_.start_args_size() > 0) {
          what += " with";
          for (const auto& a : f_.start_args()) what += " " + a;
        }
        break;
      }
      default:
        what = SignalName(EffectiveSignal(f_));
        break;
    }
    auto list = [](const std::vector<Target>& targets) {
      std::string out;
      for (const auto& t : targets) {
        out += (out.empty() ? "" : ", ") + std::to_string(t.pid) + " (" + t.comm + ")";
      }
      return out;
    };
    std::string who = list(targets_);
    if (who.empty()) who = SelectorText(f_.target());
    std::string late;
    {
      std::lock_guard lock(not_stopped_mu_);
      late = list(not_stopped_);
    }
    if (!late.empty()) {
      who += "; still running 1 s after SIGSTOP: " + late +
             " (a thread in uninterruptible sleep stops only when it wakes)";
    }
    return what + " -> " + who;
  }

  Counters Observe() const override {
    Counters c{{"targets", static_cast<int64_t>(targets_.size())},
               {"signalled", signalled_.load()},
               {"resumed", resumed_.load()}};
    if (f_.action() == ProcessFault::PAUSE) c["stopped"] = stopped_.load();
    if (f_.action() == ProcessFault::REJOIN) c["wiped_entries"] = wiped_.load();
    if (time_to_ready_ms_ >= 0) c["time_to_ready_ms"] = time_to_ready_ms_;
    return c;
  }

 private:
  // A pause is applied when its targets no longer run, not when SIGSTOP was sent: a busy Go
  // process (etcd) goes on for milliseconds after kill() returns, long enough to answer a client
  // the experiment believes it cut off. A thread in uninterruptible IO stops only when that IO
  // ends, so the wait is bounded; `stopped` counts the targets seen fully stopped in time.
  void AwaitStopped() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    std::vector<const Target*> pending;
    for (const auto& t : targets_) pending.push_back(&t);
    while (true) {
      std::erase_if(pending, [&](const Target* t) {
        if (!SameProcess(t->pid, t->start_time)) return true;  // exited: nothing runs
        if (!EveryThreadStopped(t->pid)) return false;
        ++stopped_;
        return true;
      });
      if (pending.empty()) return;
      if (std::chrono::steady_clock::now() >= deadline) {
        std::lock_guard lock(not_stopped_mu_);
        for (const Target* t : pending) not_stopped_.push_back(*t);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  v1::FaultSpec spec_;
  const ProcessFault& f_;
  const FaultContext& ctx_;
  std::vector<Target> targets_;
  bool applied_ = false;
  bool reverted_ = false;
  std::atomic<int64_t> signalled_{0};
  std::atomic<int64_t> resumed_{0};
  int64_t time_to_ready_ms_ = -1;
  std::atomic<int64_t> stopped_{0};
  std::atomic<int64_t> wiped_{0};  // rejoin: top-level entries removed from the state dirs
  mutable std::mutex dirs_mu_;
  std::vector<std::filesystem::path> wiped_dirs_;
  mutable std::mutex not_stopped_mu_;
  std::vector<Target> not_stopped_;  // targets a pause had not stopped by its deadline
};

class ProcessFactory : public FaultFactory {
 public:
  std::string_view Family() const override { return "process"; }

  FieldErrors Validate(const v1::FaultSpec& spec) const override { return ValidateSpec(spec); }

  std::unique_ptr<Fault> Create(const v1::FaultSpec& spec, const FaultContext& ctx) const override {
    return std::make_unique<ProcessFaultImpl>(spec, ctx);
  }

  std::unique_ptr<Fault> Restore(const v1::FaultSpec& spec, std::string_view state,
                                 const FaultContext& ctx) const override {
    auto f = std::make_unique<ProcessFaultImpl>(spec, ctx);
    f->LoadState(state);
    return f;
  }
};

}  // namespace

void RegisterProcessFaults(Registry& registry) { registry.Add(std::make_unique<ProcessFactory>()); }

}  // namespace faultline::faults::process
