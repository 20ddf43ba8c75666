#include "faults/process/process_faults.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>
#include <regex>

#include "faults/core/duration.h"
#include "faults/process/proc.h"

namespace faultline::faults::process {
namespace {

using v1::ProcessFault;
using json = nlohmann::json;

struct Target {
  pid_t pid;
  uint64_t start_time;
  std::string comm;
};

std::string ActionName(ProcessFault::Action a) {
  switch (a) {
    case ProcessFault::SIGNAL:
      return "signal";
    case ProcessFault::KILL:
      return "kill";
    case ProcessFault::PAUSE:
      return "pause";
    case ProcessFault::RESTART:
      return "restart";
    default:
      return "unspecified";
  }
}

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
      return SIGTERM;
    case ProcessFault::PAUSE:
      return SIGSTOP;
    default:
      return 0;
  }
}

std::string SelectorText(const v1::ProcessTarget& t) {
  switch (t.selector_case()) {
    case v1::ProcessTarget::kPid:
      return "pid " + std::to_string(t.pid());
    case v1::ProcessTarget::kName:
      return "name \"" + t.name() + "\"";
    case v1::ProcessTarget::kCmdline:
      return "cmdline /" + t.cmdline() + "/";
    case v1::ProcessTarget::kCgroup:
      return "cgroup " + t.cgroup();
    case v1::ProcessTarget::kSystemdUnit:
      return "unit " + t.systemd_unit();
    case v1::ProcessTarget::kManaged:
      return "managed process " + t.managed();
    default:
      return "no target";
  }
}

// systemd puts a unit's processes in a cgroup named after it; search the usual slices.
std::string UnitCgroup(const std::string& unit) {
  for (const char* slice : {"system.slice", "user.slice", "machine.slice", ""}) {
    std::string rel = std::string(slice) + (*slice ? "/" : "") + unit;
    std::error_code ec;
    if (std::filesystem::is_directory("/sys/fs/cgroup/" + rel, ec)) return rel;
  }
  return "";
}

class ProcessFaultImpl : public Fault {
 public:
  ProcessFaultImpl(v1::FaultSpec spec, const FaultContext& ctx)
      : spec_(std::move(spec)), f_(spec_.process()), ctx_(ctx) {}

  std::string Kind() const override { return "process/" + ActionName(f_.action()); }

  bool OneShot() const override {
    if (f_.action() == ProcessFault::PAUSE) return false;
    // A kill with automatic restart stays active until the restart (its revert) is due.
    return !(f_.action() == ProcessFault::KILL && FromProto(f_.restart_after()).count() > 0);
  }

  void Prepare() override {
    if (!targets_.empty()) return;
    const auto& t = f_.target();
    std::vector<pid_t> candidates;
    switch (t.selector_case()) {
      case v1::ProcessTarget::kPid:
        candidates.push_back(t.pid());
        break;
      case v1::ProcessTarget::kManaged: {
        if (ctx_.supervisor == nullptr) {
          throw FaultError("process.target.managed: this agent manages no processes");
        }
        int pid = ctx_.supervisor->Pid(t.managed());
        // Restart of a stopped managed process is still meaningful: it starts it.
        if (pid <= 0 && f_.action() != ProcessFault::RESTART) {
          throw FaultError("process.target.managed: managed process \"" + t.managed() +
                           "\" is not running");
        }
        if (pid > 0) candidates.push_back(pid);
        break;
      }
      case v1::ProcessTarget::kCgroup:
        candidates = CgroupPids(t.cgroup());
        break;
      case v1::ProcessTarget::kSystemdUnit: {
        std::string cg = UnitCgroup(t.systemd_unit());
        if (cg.empty()) {
          throw FaultError("process.target.systemd_unit: no cgroup found for unit \"" +
                           t.systemd_unit() + "\"");
        }
        candidates = CgroupPids(cg);
        break;
      }
      default:
        candidates = ListPids();
        break;
    }
    std::optional<std::regex> re;
    if (t.selector_case() == v1::ProcessTarget::kCmdline) re.emplace(t.cmdline());
    for (pid_t pid : candidates) {
      if (pid == ctx_.agent_pid || pid == 1) continue;
      auto info = ReadProc(pid);
      if (!info || info->state == 'Z') continue;
      if (t.selector_case() == v1::ProcessTarget::kName && info->comm != t.name()) continue;
      if (re && !std::regex_search(info->cmdline, *re)) continue;
      // Kernel threads have an empty cmdline; never signal them by pattern.
      if (t.selector_case() != v1::ProcessTarget::kPid && info->cmdline.empty()) continue;
      targets_.push_back({pid, info->start_time, info->comm});
    }
    if (targets_.empty()) {
      if (t.selector_case() == v1::ProcessTarget::kPid) {
        if (t.pid() == ctx_.agent_pid) {
          throw FaultError("process.target.pid: refusing to target the agent itself");
        }
        if (t.pid() == 1) throw FaultError("process.target.pid: refusing to target pid 1");
        throw FaultError("process.target.pid: no process with pid " + std::to_string(t.pid()));
      }
      if (f_.action() == ProcessFault::RESTART &&
          t.selector_case() == v1::ProcessTarget::kManaged) {
        return;
      }
      throw FaultError("process.target: no process matches " + SelectorText(t));
    }
    if (t.mode() == v1::ProcessTarget::ONE && targets_.size() > 1) {
      Rng rng = Rng(spec_.seed()).Fork("process.target");
      Target pick = targets_[rng.Below(targets_.size())];
      targets_ = {pick};
    }
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
      default:
        what = SignalName(EffectiveSignal(f_));
        break;
    }
    std::string who;
    for (const auto& t : targets_) {
      who += (who.empty() ? "" : ", ") + std::to_string(t.pid) + " (" + t.comm + ")";
    }
    if (who.empty()) who = SelectorText(f_.target());
    return what + " -> " + who;
  }

  Counters Observe() const override {
    Counters c{{"targets", static_cast<int64_t>(targets_.size())},
               {"signalled", signalled_.load()},
               {"resumed", resumed_.load()}};
    if (time_to_ready_ms_ >= 0) c["time_to_ready_ms"] = time_to_ready_ms_;
    return c;
  }

 private:
  v1::FaultSpec spec_;
  const ProcessFault& f_;
  const FaultContext& ctx_;
  std::vector<Target> targets_;
  bool applied_ = false;
  bool reverted_ = false;
  std::atomic<int64_t> signalled_{0};
  std::atomic<int64_t> resumed_{0};
  int64_t time_to_ready_ms_ = -1;
};

class ProcessFactory : public FaultFactory {
 public:
  std::string_view Family() const override { return "process"; }

  FieldErrors Validate(const v1::FaultSpec& spec) const override {
    FieldErrors e;
    const auto& f = spec.process();
    if (f.action() == ProcessFault::ACTION_UNSPECIFIED ||
        !ProcessFault::Action_IsValid(f.action())) {
      e.push_back({"process.action", "required: one of signal, kill, pause, restart"});
    }
    const auto& t = f.target();
    switch (t.selector_case()) {
      case v1::ProcessTarget::SELECTOR_NOT_SET:
        e.push_back({"process.target",
                     "required: one of pid, name, cmdline, cgroup, systemd_unit, managed"});
        break;
      case v1::ProcessTarget::kPid:
        if (t.pid() <= 0) e.push_back({"process.target.pid", "must be a positive pid"});
        break;
      case v1::ProcessTarget::kName:
        if (t.name().empty()) e.push_back({"process.target.name", "must not be empty"});
        if (t.name().size() > 15) {
          e.push_back({"process.target.name",
                       "longer than 15 characters, the kernel's comm limit; use cmdline instead"});
        }
        break;
      case v1::ProcessTarget::kCmdline:
        if (t.cmdline().empty()) e.push_back({"process.target.cmdline", "must not be empty"});
        try {
          std::regex re(t.cmdline());
        } catch (const std::regex_error& err) {
          e.push_back(
              {"process.target.cmdline", std::string("bad regular expression: ") + err.what()});
        }
        break;
      case v1::ProcessTarget::kCgroup:
        if (t.cgroup().empty() || t.cgroup().find("..") != std::string::npos) {
          e.push_back(
              {"process.target.cgroup", "must be a path under /sys/fs/cgroup without \"..\""});
        }
        break;
      case v1::ProcessTarget::kSystemdUnit:
        if (t.systemd_unit().empty() || t.systemd_unit().find('/') != std::string::npos) {
          e.push_back({"process.target.systemd_unit", "must be a unit name like etcd.service"});
        }
        break;
      case v1::ProcessTarget::kManaged:
        if (t.managed().empty()) e.push_back({"process.target.managed", "must not be empty"});
        break;
    }
    if (!v1::ProcessTarget::Mode_IsValid(t.mode())) {
      e.push_back({"process.target.mode", "must be all or one"});
    }
    bool signal_required = f.action() == ProcessFault::SIGNAL;
    if (f.signal() != 0 || signal_required) {
      if (f.signal() < 1 || f.signal() > 64) {
        e.push_back({"process.signal", "must be a signal number between 1 and 64 (got " +
                                           std::to_string(f.signal()) + ")"});
      }
    }
    if (f.action() == ProcessFault::PAUSE && f.signal() != 0) {
      e.push_back({"process.signal", "pause always uses SIGSTOP/SIGCONT; leave signal unset"});
    }
    if (FromProto(f.grace()).count() < 0) e.push_back({"process.grace", "must not be negative"});
    if (FromProto(f.restart_after()).count() < 0) {
      e.push_back({"process.restart_after", "must not be negative"});
    }
    if (FromProto(f.restart_after()).count() > 0 && !t.has_managed()) {
      e.push_back({"process.restart_after", "automatic restart needs a managed target"});
    }
    if (f.action() == ProcessFault::RESTART && !t.has_managed()) {
      e.push_back({"process.target", "restart needs a managed process (target.managed)"});
    }
    return e;
  }

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
