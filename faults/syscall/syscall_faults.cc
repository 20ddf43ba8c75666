#include "faults/syscall/syscall_faults.h"

#include <string.h>
#include <sys/utsname.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "faults/core/duration.h"
#include "faults/core/host.h"
#include "faults/syscall/interceptor.h"
#include "faults/syscall/launch.h"

namespace faultline::faults::syscalls {
namespace {

using json = nlohmann::json;
using v1::SyscallFault;

double EffectivePercent(const SyscallFault& f) { return f.percent() == 0 ? 100 : f.percent(); }

class SyscallFaultImpl : public Fault {
 public:
  SyscallFaultImpl(v1::FaultSpec spec, const FaultContext& ctx, std::string rule_id)
      : spec_(std::move(spec)), f_(spec_.syscall()), ctx_(ctx), rule_id_(std::move(rule_id)) {}

  std::string Kind() const override { return "syscall/" + Effect(); }

  void Prepare() override {
    std::shared_ptr<SyscallInterceptor> in = Find();
    for (int i = 0; i < f_.syscalls_size(); ++i) {
      auto nr = ResolveSyscall(f_.syscalls(i));
      if (!nr || !in->Intercepts(*nr)) {
        std::string list;
        for (const auto& n : in->intercepted()) list += (list.empty() ? "" : ", ") + n;
        throw FaultError("syscall.syscalls[" + std::to_string(i) + "]: " + f_.syscalls(i) +
                         " is not intercepted for managed process \"" + f_.managed() +
                         "\" (intercepted: " + list + ")");
      }
    }
  }

  std::string State() const override {
    return json{{"managed", f_.managed()}, {"rule", rule_id_}}.dump();
  }

  void LoadState(std::string_view state) {
    auto j = json::parse(state, nullptr, false);
    if (!j.is_discarded()) rule_id_ = j.value("rule", rule_id_);
  }

  void Apply() override {
    std::shared_ptr<SyscallInterceptor> in = Find();
    SyscallRule rule;
    rule.id = rule_id_;
    for (const auto& name : f_.syscalls()) rule.syscalls.insert(*ResolveSyscall(name));
    rule.error = f_.error().empty() ? 0 : ParseErrno(f_.error()).value_or(0);
    rule.delay = FromProto(f_.delay());
    rule.percent = EffectivePercent(f_);
    rule.max_count = f_.max_count();
    rule.seed = spec_.seed();
    in->Arm(std::move(rule));
  }

  void Revert() override {
    // A restarted agent has no interceptor left for the rule (the listener died with the old
    // agent), and a restarted process has a new one without it: either way nothing is armed.
    if (ctx_.supervisor == nullptr) return;
    std::shared_ptr<SyscallInterceptor> in;
    try {
      in = ctx_.supervisor->Interceptor(f_.managed());
    } catch (const FaultError&) {
      return;
    }
    if (in == nullptr) return;
    if (auto c = in->Counters(rule_id_)) last_ = *c;
    in->Disarm(rule_id_);
  }

  std::string Describe() const override {
    std::string calls;
    for (const auto& s : f_.syscalls()) calls += (calls.empty() ? "" : ",") + s;
    std::string what;
    if (FromProto(f_.delay()).count() > 0) what = "delay " + FormatDuration(FromProto(f_.delay()));
    if (!f_.error().empty()) {
      auto e = ParseErrno(f_.error());
      const char* name = e ? strerrorname_np(*e) : nullptr;
      what += (what.empty() ? "" : " then ") + std::string(name ? name : f_.error());
    }
    char pct[32];
    std::snprintf(pct, sizeof pct, "%g%%", EffectivePercent(f_));
    std::string out = what + " on " + calls + " of managed process " + f_.managed() + " (" + pct;
    if (f_.max_count() != 0) out += ", at most " + std::to_string(f_.max_count());
    return out + ")";
  }

  Counters Observe() const override {
    RuleCounters c = last_;
    if (ctx_.supervisor != nullptr) {
      try {
        if (auto in = ctx_.supervisor->Interceptor(f_.managed())) {
          if (auto now = in->Counters(rule_id_)) c = *now;
        }
      } catch (const FaultError&) {
      }
    }
    return {{"matched", c.matched}, {"affected", c.affected}};
  }

 private:
  std::string Effect() const {
    bool err = !f_.error().empty(), delay = FromProto(f_.delay()).count() > 0;
    return err && delay ? "delay+errno" : err ? "errno" : "delay";
  }

  std::shared_ptr<SyscallInterceptor> Find() const {
    if (ctx_.supervisor == nullptr) {
      throw FaultError("syscall.managed: this agent manages no processes");
    }
    std::shared_ptr<SyscallInterceptor> in = ctx_.supervisor->Interceptor(f_.managed());
    if (in == nullptr) {
      throw FaultError("syscall.managed: managed process \"" + f_.managed() +
                       "\" was not started under the syscall interceptor (faultline-seccomp-exec)");
    }
    return in;
  }

  v1::FaultSpec spec_;
  const SyscallFault& f_;
  const FaultContext& ctx_;
  std::string rule_id_;
  RuleCounters last_;
};

class SyscallFactory : public FaultFactory {
 public:
  std::string_view Family() const override { return "syscall"; }

  FieldErrors Validate(const v1::FaultSpec& spec) const override { return ValidateSpec(spec); }

  std::unique_ptr<Fault> Create(const v1::FaultSpec& spec, const FaultContext& ctx) const override {
    return std::make_unique<SyscallFaultImpl>(spec, ctx, NewRuleId());
  }

  std::unique_ptr<Fault> Restore(const v1::FaultSpec& spec, std::string_view state,
                                 const FaultContext& ctx) const override {
    auto f = std::make_unique<SyscallFaultImpl>(spec, ctx, NewRuleId());
    f->LoadState(state);
    return f;
  }

  std::map<std::string, std::pair<bool, std::string>> Probe() const override {
    std::map<std::string, std::pair<bool, std::string>> out;
    std::ifstream actions("/proc/sys/kernel/seccomp/actions_avail");
    std::string avail((std::istreambuf_iterator<char>(actions)), {});
    bool notif = avail.find("user_notif") != std::string::npos;
    out["seccomp_user_notif"] = {notif,
                                 notif ? "available" : "kernel lacks SECCOMP_RET_USER_NOTIF"};
    bool wk = KernelAtLeast(5, 19);
    out["wait_killable_recv"] = {wk, wk ? "held calls survive signals"
                                        : "held calls restart on every signal (kernel < 5.19)"};
    std::error_code ec;
    std::string loader = LoaderPath();
    bool present = std::filesystem::exists(loader, ec);
    out["loader"] = {present, loader};
    return out;
  }

 private:
  std::string NewRuleId() const {
    return "syscall-" + std::to_string(::getpid()) + "-" + std::to_string(next_.fetch_add(1)) +
           "-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  mutable std::atomic<uint64_t> next_{1};
};

}  // namespace

void RegisterSyscallFaults(Registry& registry) { registry.Add(std::make_unique<SyscallFactory>()); }

}  // namespace faultline::faults::syscalls
