#include "faults/io/io_faults.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "faults/core/duration.h"
#include "faults/core/lateness.h"
#include "faults/io/crash.h"
#include "faults/io/glob.h"
#include "faults/io/spec.h"
#include "faults/sys/realtime.h"

namespace faultline::faults::io {

RuleSpec RuleFromSpec(const v1::FaultSpec& spec) {
  const v1::IoFault& f = spec.io();
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
  r.corrupt_on_write = f.corrupt_side() == v1::IoFault::WRITE;
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
  r.names = c.names();
  return r;
}

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

// What an rule's kind needs restarted after a crash its overlay process ran: the managed
// process lives in the agent, so the agent watches the overlay's crash count and starts it.
bool CanCrash(IoFault::Action a) {
  return a == IoFault::LOSE_UNSYNCED || a == IoFault::TORN_WRITE || a == IoFault::TORN_SEQUENCE ||
         a == IoFault::CRASH_AT;
}

class IoFaultImpl : public Fault {
 public:
  IoFaultImpl(v1::FaultSpec spec, OverlayManager& manager, Supervisor* supervisor)
      : spec_(std::move(spec)), f_(spec_.io()), manager_(manager), supervisor_(supervisor) {}
  ~IoFaultImpl() override { StopWatch(); }

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
    std::lock_guard lock(mu_);
    auto ov = manager_.Find(f_.mount());
    json j{{"mount", f_.mount()},
           {"instance", instance_.empty() && ov ? ov->instance() : instance_}};
    if (rule_id_ != 0) j["rule_id"] = rule_id_;
    return j.dump();
  }

  void LoadState(std::string_view state) {
    auto j = json::parse(state, nullptr, false);
    if (j.is_discarded()) return;
    instance_ = j.value("instance", std::string());
    rule_id_ = j.value("rule_id", uint64_t{0});
    restored_ = true;
  }

  void Lease(std::chrono::steady_clock::time_point until) override {
    std::lock_guard lock(mu_);
    until_ = until;
    if (rule_id_ == 0 || reverted_) return;
    // Best effort: an overlay process that is gone took the rule with it.
    if (auto ov = Overlay(); ov) {
      try {
        ov->Lease(rule_id_, Left());
      } catch (const std::exception& e) {
        fprintf(stderr, "io: lease of rule %lu on %s: %s\n", static_cast<unsigned long>(rule_id_),
                f_.mount().c_str(), e.what());
      }
    }
  }

  void Apply() override {
    std::lock_guard lock(mu_);
    if (rule_id_ != 0 || restored_ || crashed_) return;
    auto ov = manager_.Find(f_.mount());
    if (!ov) {
      throw FaultError("io.mount: no faultline overlay is mounted at " + f_.mount());
    }
    instance_ = ov->instance();
    if (f_.action() == IoFault::CRASH) {
      if (!ov->Crash())
        throw FaultError("io crash: " + f_.mount() + ": a crash is already under way");
      auto st = ov->State();
      crash_ = st.last_crash();
      crashed_ = true;
      NoteKilled(st);
      RestartAfterCrash(supervisor_, f_.crash().restart());
      return;
    }
    crashes_seen_ = ov->State().crashes();
    rule_id_ = ov->Arm(spec_, Left());
    if (supervisor_ != nullptr && CanCrash(f_.action())) {
      watch_ = std::thread([this, ov] { Watch(ov); });
    }
  }

  void Revert() override {
    StopWatch();
    std::lock_guard lock(mu_);
    if (reverted_) return;
    // Gone or remounted since: nothing of ours is armed there.
    if (auto ov = Overlay(); ov && rule_id_ != 0) {
      try {
        ov->Disarm(rule_id_);
      } catch (const FaultError&) {
        // The overlay process is gone, and its rules with it.
      }
    }
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
      case IoFault::CRASH: {
        std::lock_guard lock(mu_);
        return "crash of " + f_.mount() + (crash_.empty() ? "" : ": " + crash_);
      }
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
    if (f_.action() == IoFault::LATENCY) {
      // The user asked for a delay; say how exactly it is being served: the overlay process
      // counts it and names its release thread's scheduling, both in one reply.
      const std::optional<v1::OverlayReply> state = RuleState();
      Counters c = CountersFrom(state);
      if (std::string late = DescribeLatenessCounters(c); !late.empty()) what += "; " + late;
      const std::string release = state ? state->release_scheduling() : "";
      if (!release.empty()) what += "; release thread " + release;
      if (state && !state->workers_scheduling().empty()) {
        what += "; FUSE workers " + state->workers_scheduling();
      }
    }
    return what;
  }

  Counters Observe() const override { return CountersFrom(RuleState()); }

 private:
  // The overlay process's state, its rules cut to this fault's, while the rule is armed there;
  // nullopt when it is not (never armed, the overlay gone or remounted, the process not
  // answering).
  std::optional<v1::OverlayReply> RuleState() const {
    std::lock_guard lock(mu_);
    if (rule_id_ == 0) return std::nullopt;
    auto ov = Overlay();
    if (!ov) return std::nullopt;
    v1::OverlayReply state;
    try {
      state = ov->State();
    } catch (const FaultError&) {
      return std::nullopt;
    }
    auto* rules = state.mutable_rules();
    rules->erase(std::remove_if(rules->begin(), rules->end(),
                                [&](const v1::OverlayRule& r) { return r.id() != rule_id_; }),
                 rules->end());
    return state;
  }

  Counters CountersFrom(const std::optional<v1::OverlayReply>& reply) const {
    Counters c{{"matched", 0}, {"acted", 0}};
    if (!reply) return c;
    const v1::OverlayReply& state = *reply;
    int64_t effect = 0;
    for (const auto& r : state.rules()) {
      c["matched"] = r.matched();
      c["acted"] = r.acted();
      effect = r.effect();
      if (f_.action() == IoFault::LATENCY) {
        Lateness::Summary late;
        late.count = r.late_samples();
        late.p50_ns = r.late_p50_ns();
        late.p99_ns = r.late_p99_ns();
        late.max_ns = r.late_max_ns();
        Lateness::AddCounters(late, c);
        c["release_realtime"] = state.release_realtime() ? 1 : 0;
        c["workers_realtime"] = state.workers_realtime() ? 1 : 0;
      }
    }
    c["overlay_crashes"] = state.crashes();
    c["unsynced_bytes_held"] = static_cast<int64_t>(state.unsynced_bytes());
    static const std::map<IoFault::Action, std::string> kEffect = {
        {IoFault::LATENCY, "delay_ns_total"},
        {IoFault::ERRNO, "errors"},
        {IoFault::SHORT, "bytes_withheld"},
        {IoFault::CORRUPT, "bytes_corrupted"},
        {IoFault::ATTR, "overridden"},
        {IoFault::ENOSPC_AFTER, "enospc_errors"},
        {IoFault::LOSE_UNSYNCED, "bytes_dropped"},
        {IoFault::TORN_WRITE, "bytes_torn_away"},
        {IoFault::TORN_SEQUENCE, "writes_dropped"},
        {IoFault::CRASH_AT, "crashes"},
        {IoFault::SKIP_SYNC, "syncs_skipped"}};
    if (auto it = kEffect.find(f_.action()); it != kEffect.end()) c[it->second] = effect;
    return c;
  }

  // The overlay this fault's rule lives in, if it still serves (same instance).
  std::shared_ptr<OverlayClient> Overlay() const {
    auto ov = manager_.Find(f_.mount());
    return ov && ov->instance() == instance_ ? ov : nullptr;
  }

  // What is left of the lease; a fault told none yet gets the agent's usual default.
  std::chrono::nanoseconds Left() const {
    if (!until_) return std::chrono::minutes(10);
    return std::max(std::chrono::nanoseconds(1), *until_ - std::chrono::steady_clock::now());
  }

  // The managed processes a crash killed died of this fault, not of themselves: the liveness
  // check must not count them as etcd's own exits.
  void NoteKilled(const v1::OverlayReply& st) {
    if (supervisor_ == nullptr) return;
    for (int pid : st.last_crash_killed())
      supervisor_->NoteKilled(pid, "fault " + Kind() + " crash");
  }

  // After each crash the overlay process ran while the rule was armed: notes whom it killed and
  // restarts the managed process if asked (the overlay process cannot: the supervisor is the
  // agent's).
  void Watch(std::shared_ptr<OverlayClient> ov) {
    int64_t seen = crashes_seen_;
    std::unique_lock lock(watch_mu_);
    while (!watch_stop_) {
      watch_cv_.wait_for(lock, std::chrono::milliseconds(50));
      if (watch_stop_) break;
      try {
        auto st = ov->State();
        if (st.crashing() || st.crashes() <= seen) continue;
        seen = st.crashes();
        NoteKilled(st);
      } catch (const FaultError&) {
        return;
      }
      lock.unlock();
      RestartAfterCrash(supervisor_, f_.crash().restart());
      lock.lock();
    }
  }

  void StopWatch() {
    {
      std::lock_guard lock(watch_mu_);
      watch_stop_ = true;
    }
    watch_cv_.notify_all();
    if (watch_.joinable()) watch_.join();
  }

  v1::FaultSpec spec_;
  const IoFault& f_;
  OverlayManager& manager_;
  Supervisor* supervisor_;
  mutable std::mutex mu_;
  std::optional<std::chrono::steady_clock::time_point> until_;
  std::string crash_;
  std::string instance_;
  uint64_t rule_id_ = 0;
  int64_t crashes_seen_ = 0;
  bool crashed_ = false;
  bool restored_ = false;
  bool reverted_ = false;
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool watch_stop_ = false;
  std::thread watch_;
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
