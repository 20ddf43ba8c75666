#include "faults/time/time_faults.h"

#include <atomic>
#include <nlohmann/json.hpp>

#include "faults/core/duration.h"
#include "faults/core/names.h"
#include "faults/process/spec.h"
#include "faults/process/target.h"
#include "faults/time/blob.h"
#include "faults/time/skew.h"
#include "faults/time/spec.h"
#include "faults/time/vdso.h"

namespace faultline::faults::time {
namespace {

using json = nlohmann::json;
using v1::TimeFault;

std::string ClockNames(const TimeFault& f) {
  if (f.clocks_size() == 0) return "CLOCK_REALTIME";
  std::string out;
  for (int c : f.clocks()) {
    out += out.empty() ? "" : "+";
    out += c == TimeFault::MONOTONIC  ? "CLOCK_MONOTONIC"
           : c == TimeFault::BOOTTIME ? "CLOCK_BOOTTIME"
                                      : "CLOCK_REALTIME";
  }
  return out;
}

class TimeFaultImpl : public Fault {
 public:
  TimeFaultImpl(v1::FaultSpec spec, const FaultContext& ctx, const TimeOptions& options)
      : spec_(std::move(spec)), f_(spec_.time()), ctx_(ctx), options_(options) {}

  std::string Kind() const override { return "time/" + NameOf(f_.action()); }

  void Prepare() override {
    if (!plans_.empty()) return;
    auto targets = process::ResolveTargets(f_.target(), spec_.seed(), ctx_, "time.target");
    int64_t offset = FromProto(f_.offset()).count();
    for (const auto& t : targets) {
      plans_.push_back(PlanSkew(t.pid, t.start_time, t.comm, offset, ClockMask(f_)));
    }
  }

  std::string State() const override {
    json j = json::array();
    for (const auto& p : plans_) j.push_back(p.ToJson());
    return json{{"targets", j}}.dump();
  }

  void LoadState(std::string_view state) {
    auto j = json::parse(state, nullptr, false);
    if (j.is_discarded() || !j.contains("targets")) return;
    for (const auto& t : j["targets"]) plans_.push_back(SkewPlan::FromJson(t));
  }

  void Apply() override {
    if (applied_) return;
    // All targets or none: a failure reverts the ones already skewed.
    size_t done = 0;
    try {
      for (; done < plans_.size(); ++done) ApplySkew(plans_[done], options_.stop_timeout);
    } catch (...) {
      for (size_t i = done; i-- > 0;) {
        try {
          RevertSkew(plans_[i], options_.stop_timeout);
        } catch (...) {
        }
      }
      throw;
    }
    applied_ = true;
    skewed_ = static_cast<int64_t>(plans_.size());
  }

  void Revert() override {
    std::string errors;
    for (const auto& p : plans_) {
      try {
        switch (RevertSkew(p, options_.stop_timeout)) {
          case RevertResult::kRestored:
            ++restored_;
            break;
          case RevertResult::kGone:
            ++gone_;
            break;
          case RevertResult::kAlreadyClean:
            break;
        }
      } catch (const std::exception& e) {
        errors += (errors.empty() ? "" : "; ") + std::string(e.what());
      }
    }
    if (!errors.empty()) throw FaultError(errors);
  }

  std::string Describe() const override {
    std::string who;
    bool syscall = false;
    for (const auto& p : plans_) {
      who += (who.empty() ? "" : ", ") + std::to_string(p.pid) + " (" + p.comm + ")";
      syscall |= p.real_via_syscall;
    }
    if (who.empty()) who = process::SelectorText(f_.target());
    auto off = FromProto(f_.offset());
    return std::string("offset ") + (off.count() >= 0 ? "+" : "") + FormatDuration(off) + " on " +
           ClockNames(f_) + " of " + who + (syscall ? " (real clock read by syscall)" : "");
  }

  Counters Observe() const override {
    int64_t syscall = 0;
    for (const auto& p : plans_) syscall += p.real_via_syscall ? 1 : 0;
    return {{"targets", static_cast<int64_t>(plans_.size())},
            {"skewed", skewed_.load()},
            {"restored", restored_.load()},
            {"exited", gone_.load()},
            {"real_clock_by_syscall", syscall}};
  }

 private:
  v1::FaultSpec spec_;
  const TimeFault& f_;
  const FaultContext& ctx_;
  TimeOptions options_;
  std::vector<SkewPlan> plans_;
  bool applied_ = false;
  std::atomic<int64_t> skewed_{0}, restored_{0}, gone_{0};
};

class TimeFactory : public FaultFactory {
 public:
  explicit TimeFactory(TimeOptions options) : options_(options) {}
  std::string_view Family() const override { return "time"; }

  FieldErrors Validate(const v1::FaultSpec& spec) const override {
    return ValidateTimeFault(spec, options_);
  }

  std::unique_ptr<Fault> Create(const v1::FaultSpec& spec, const FaultContext& ctx) const override {
    return std::make_unique<TimeFaultImpl>(spec, ctx, options_);
  }

  std::unique_ptr<Fault> Restore(const v1::FaultSpec& spec, std::string_view state,
                                 const FaultContext& ctx) const override {
    auto f = std::make_unique<TimeFaultImpl>(spec, ctx, options_);
    f->LoadState(state);
    return f;
  }

  std::vector<std::string> Sweep(const FaultContext& ctx) const override {
#if defined(__x86_64__)
    return SweepSkews(ctx.agent_pid > 0 ? ctx.agent_pid : ::getpid(), options_.stop_timeout);
#else
    (void)ctx;
    return {};
#endif
  }

  std::map<std::string, std::pair<bool, std::string>> Probe() const override {
    std::map<std::string, std::pair<bool, std::string>> out;
#if defined(__x86_64__)
    try {
      VdsoLayout l = ParseVdso(OwnVdsoImage());
      uint64_t room = OwnVdsoImage().size() - l.free_begin;
      bool fits = room >= Layout().size;
      out["vdso"] = {fits, std::to_string(room) + " free bytes in the vDSO, blob needs " +
                               std::to_string(Layout().size)};
      auto prologue = std::span<const uint8_t>(
          reinterpret_cast<const uint8_t*>(OwnVdsoImage().data()) + l.clock_gettime, 16);
      bool fast = DisplaceableLength(prologue).has_value();
      out["fast_real_clock"] = {fast, fast ? "the real clock is read through the vDSO"
                                           : "the real clock is read by syscall"};
    } catch (const std::exception& e) {
      out["vdso"] = {false, e.what()};
    }
#else
    out["vdso"] = {false, "time faults need an x86-64 agent"};
#endif
    return out;
  }

 private:
  TimeOptions options_;
};

}  // namespace

FieldErrors ValidateTimeFault(const v1::FaultSpec& spec, const TimeOptions& options) {
  FieldErrors e = ValidateSpec(spec);
  auto off = FromProto(spec.time().offset());
  if (off > options.max_offset || off < -options.max_offset) {
    e.push_back({"time.offset", FormatDuration(off) + " is beyond this agent's bound of ±" +
                                    FormatDuration(options.max_offset) + " (--time-max-offset)"});
  }
  return e;
}

void RegisterTimeFaults(Registry& registry, TimeOptions options) {
  registry.Add(std::make_unique<TimeFactory>(options));
}

}  // namespace faultline::faults::time
