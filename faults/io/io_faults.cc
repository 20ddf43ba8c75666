#include "faults/io/io_faults.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <thread>

#include "faults/core/duration.h"
#include "faults/io/crash.h"
#include "faults/io/glob.h"
#include "faults/io/spec.h"
#include "faults/sys/realtime.h"

namespace faultline::faults::io {
namespace {

using json = nlohmann::json;
using v1::IoFault;

// After a crash: start the managed process again once its supervisor has seen it die (its
// restart policy may have done so already).
void RestartAfterCrash(Supervisor* supervisor, const std::string& name) {
  if (supervisor == nullptr || name.empty()) return;
  try {
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < end) {
      int pid = supervisor->Pid(name);
      if (pid != 0 && Running(pid)) return;  // already restarted by its policy
      if (pid == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    supervisor->Start(name);
  } catch (const std::exception& e) {
    fprintf(stderr, "io crash: restart of managed %s failed: %s\n", name.c_str(), e.what());
  }
}

RuleSpec ToRule(const v1::FaultSpec& spec, Supervisor* supervisor) {
  const IoFault& f = spec.io();
  RuleSpec r;
  r.kind = static_cast<RuleKind>(f.action());
  r.path_glob = f.path();
  for (const auto& m : f.methods()) r.methods |= ParseMethod(m).value_or(0);
  r.percent = f.has_percent() ? f.percent() : 100.0;
  r.max_count = f.max_count();
  // Each fault draws from its own stream, so two faults with one seed do not act in lockstep.
  r.seed = Rng(spec.seed()).Fork("io." + ActionName(f.action()) + "." + f.path()).Next();
  r.delay = FromProto(f.delay());
  r.jitter = FromProto(f.jitter());
  r.distribution = static_cast<Distribution>(f.distribution());
  for (const auto& e : f.errnos()) {
    r.errnos.emplace_back(ParseErrno(e.name()).value_or(EIO), e.weight() == 0 ? 1 : e.weight());
  }
  r.short_fraction = f.short_fraction();
  r.short_bytes = f.short_bytes();
  r.corrupt_mode = static_cast<CorruptMode>(f.corrupt_mode());
  r.corrupt_on_write = f.corrupt_side() == IoFault::WRITE;
  r.corrupt_max_bytes = f.corrupt_max_bytes() == 0 ? 1 : f.corrupt_max_bytes();
  const auto& a = f.attr();
  if (a.has_size()) r.attr.size = a.size();
  if (a.has_mode()) r.attr.mode = a.mode();
  if (a.has_mtime_unix()) r.attr.mtime = a.mtime_unix();
  if (a.has_atime_unix()) r.attr.atime = a.atime_unix();
  if (a.has_ctime_unix()) r.attr.ctime = a.ctime_unix();
  if (a.has_uid()) r.attr.uid = a.uid();
  if (a.has_gid()) r.attr.gid = a.gid();
  if (a.has_nlink()) r.attr.nlink = a.nlink();
  r.enospc_after_bytes = f.enospc_after_bytes();
  const auto& c = f.crash();
  r.crash_at_op = c.at_op() == 0 ? 1 : c.at_op();
  r.crash_after_op = c.after_op();
  r.crash_after = FromProto(c.after());
  if (c.max_unsynced_bytes() != 0) r.max_unsynced_bytes = c.max_unsynced_bytes();
  r.tear_at.assign(c.tear_at().begin(), c.tear_at().end());
  r.tear_parts = c.parts() == 0 ? 2 : c.parts();
  r.keep.assign(c.keep().begin(), c.keep().end());
  if (!c.restart().empty() && supervisor != nullptr) {
    r.after_crash = [supervisor, name = c.restart()] { RestartAfterCrash(supervisor, name); };
  }
  return r;
}

class IoFaultImpl : public Fault {
 public:
  IoFaultImpl(v1::FaultSpec spec, OverlayManager& manager, Supervisor* supervisor)
      : spec_(std::move(spec)), f_(spec_.io()), manager_(manager), supervisor_(supervisor) {}

  std::string Kind() const override { return "io/" + ActionName(f_.action()); }
  bool OneShot() const override { return f_.action() == IoFault::CRASH; }

  void Prepare() override {
    if (manager_.Find(f_.mount()) == nullptr) {
      throw FaultError("io.mount: no faultline overlay is mounted at " + f_.mount() +
                       " (mount one first: faultline overlay mount " + f_.mount() + ")");
    }
    const std::string& restart = f_.crash().restart();
    if (!restart.empty()) {
      if (supervisor_ == nullptr) {
        throw FaultError("io.crash.restart: this agent manages no processes (no " + restart +
                         " to restart)");
      }
      supervisor_->Pid(restart);  // throws naming an unknown process
    }
  }

  std::string State() const override {
    auto ov = manager_.Find(f_.mount());
    json j{{"mount", f_.mount()},
           {"instance", instance_.empty() && ov ? ov->instance() : instance_}};
    if (rule_) j["rule_id"] = rule_->id();
    return j.dump();
  }

  void LoadState(std::string_view state) {
    auto j = json::parse(state, nullptr, false);
    if (j.is_discarded()) return;
    instance_ = j.value("instance", std::string());
    rule_id_ = j.value("rule_id", uint64_t{0});
    restored_ = true;
  }

  void Apply() override {
    if (rule_ || restored_) return;
    auto ov = manager_.Find(f_.mount());
    if (!ov) {
      throw FaultError("io.mount: no faultline overlay is mounted at " + f_.mount());
    }
    instance_ = ov->instance();
    if (f_.action() == IoFault::CRASH) {
      if (!ov->Crash())
        throw FaultError("io crash: " + f_.mount() + ": a crash is already under way");
      crash_ = ov->Crashes().last;
      RestartAfterCrash(supervisor_, f_.crash().restart());
      return;
    }
    rule_ = ov->Arm(ToRule(spec_, supervisor_));
    rule_id_ = rule_->id();
  }

  void Revert() override {
    if (reverted_) return;
    auto ov = manager_.Find(f_.mount());
    // Gone or remounted since (an agent crash takes its overlays along): nothing is armed.
    if (ov && ov->instance() == instance_ && rule_id_ != 0) ov->Disarm(rule_id_);
    reverted_ = true;
  }

  std::string Describe() const override {
    std::string what = ActionName(f_.action());
    switch (f_.action()) {
      case IoFault::LATENCY:
        what += " " + FormatDuration(FromProto(f_.delay()));
        if (FromProto(f_.jitter()).count() > 0)
          what += " ±" + FormatDuration(FromProto(f_.jitter()));
        break;
      case IoFault::ERRNO: {
        std::string list;
        for (const auto& e : f_.errnos()) list += (list.empty() ? "" : ",") + e.name();
        what += " " + list;
        break;
      }
      case IoFault::ENOSPC_AFTER:
        what += " " + std::to_string(f_.enospc_after_bytes()) + " bytes";
        break;
      case IoFault::CRASH_AT:
      case IoFault::TORN_WRITE:
      case IoFault::TORN_SEQUENCE:
        what += " at op " + std::to_string(f_.crash().at_op() == 0 ? 1 : f_.crash().at_op());
        if (f_.action() == IoFault::CRASH_AT)
          what += f_.crash().after_op() ? " (after)" : " (before)";
        break;
      case IoFault::LOSE_UNSYNCED:
        if (f_.crash().has_after())
          what += ", crash after " + FormatDuration(FromProto(f_.crash().after()));
        break;
      case IoFault::CRASH:
        return "crash of " + f_.mount() + (crash_.empty() ? "" : ": " + crash_);
      default:
        break;
    }
    if (!f_.crash().restart().empty()) what += ", restart " + f_.crash().restart();
    std::string methods;
    for (const auto& m : f_.methods()) methods += (methods.empty() ? "" : ",") + m;
    if (methods.empty()) methods = "*";
    std::string pct = f_.has_percent() ? " " + json(f_.percent()).dump() + "%" : "";
    what +=
        " on " + methods + " of " + f_.mount() + "/" + (f_.path().empty() ? "**" : f_.path()) + pct;
    if (f_.action() == IoFault::LATENCY && rule_) {
      // The user asked for a delay; say how exactly it is being served.
      what += "; " + rule_->lateness().Describe();
      if (auto ov = manager_.Find(f_.mount()); ov && ov->instance() == instance_) {
        what += "; release thread " + ov->ReleaseScheduling().detail;
      }
    }
    return what;
  }

  Counters Observe() const override {
    if (!rule_) return {{"matched", 0}, {"acted", 0}};
    Counters c{{"matched", rule_->matched()}, {"acted", rule_->acted()}};
    if (auto ov = manager_.Find(f_.mount()); ov && ov->instance() == instance_) {
      auto crashes = ov->Crashes();
      c["overlay_crashes"] = crashes.crashes;
      c["unsynced_bytes_held"] = static_cast<int64_t>(crashes.unsynced_bytes);
    }
    switch (f_.action()) {
      case IoFault::LATENCY:
        c["delay_ns_total"] = rule_->effect();
        rule_->lateness().AddCounters(c);
        if (auto ov = manager_.Find(f_.mount()); ov && ov->instance() == instance_) {
          c["release_realtime"] = ov->ReleaseScheduling().realtime ? 1 : 0;
        }
        break;
      case IoFault::ERRNO:
        c["errors"] = rule_->effect();
        break;
      case IoFault::SHORT:
        c["bytes_withheld"] = rule_->effect();
        break;
      case IoFault::CORRUPT:
        c["bytes_corrupted"] = rule_->effect();
        break;
      case IoFault::ATTR:
        c["overridden"] = rule_->effect();
        break;
      case IoFault::ENOSPC_AFTER:
        c["enospc_errors"] = rule_->effect();
        break;
      case IoFault::LOSE_UNSYNCED:
        c["bytes_dropped"] = rule_->effect();
        break;
      case IoFault::TORN_WRITE:
        c["bytes_torn_away"] = rule_->effect();
        break;
      case IoFault::TORN_SEQUENCE:
        c["writes_dropped"] = rule_->effect();
        break;
      case IoFault::CRASH_AT:
        c["crashes"] = rule_->effect();
        break;
      case IoFault::SKIP_SYNC:
        c["syncs_skipped"] = rule_->effect();
        break;
      default:
        break;
    }
    return c;
  }

 private:
  v1::FaultSpec spec_;
  const IoFault& f_;
  OverlayManager& manager_;
  Supervisor* supervisor_;
  std::shared_ptr<Rule> rule_;
  std::string crash_;
  std::string instance_;
  uint64_t rule_id_ = 0;
  bool restored_ = false;
  bool reverted_ = false;
};

class IoFactory : public FaultFactory {
 public:
  explicit IoFactory(OverlayManager& manager) : manager_(manager) {}
  std::string_view Family() const override { return "io"; }

  FieldErrors Validate(const v1::FaultSpec& spec) const override { return ValidateSpec(spec); }

  std::unique_ptr<Fault> Create(const v1::FaultSpec& spec, const FaultContext& ctx) const override {
    return std::make_unique<IoFaultImpl>(spec, manager_, ctx.supervisor);
  }

  std::unique_ptr<Fault> Restore(const v1::FaultSpec& spec, std::string_view state,
                                 const FaultContext& ctx) const override {
    auto f = std::make_unique<IoFaultImpl>(spec, manager_, ctx.supervisor);
    f->LoadState(state);
    return f;
  }

  std::vector<std::string> Sweep(const FaultContext&) const override { return manager_.Sweep(); }

  std::map<std::string, std::pair<bool, std::string>> Probe() const override {
    bool fuse = ::access("/dev/fuse", R_OK | W_OK) == 0;
    auto rt = sys::ProbeRealtime();
    return {{"fuse", {fuse, fuse ? "/dev/fuse" : "/dev/fuse is not accessible"}},
            {"realtime_release", {rt.realtime, "delayed replies: release thread " + rt.detail}}};
  }

 private:
  OverlayManager& manager_;
};

}  // namespace

void RegisterIoFaults(Registry& registry, OverlayManager& manager) {
  registry.Add(std::make_unique<IoFactory>(manager));
}

}  // namespace faultline::faults::io
