#include "controller/runner/runner.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "controller/runner/history_load.h"
#include "controller/runner/lease_keeper.h"
#include "controller/verify/checks.h"
#include "controller/verify/client.h"
#include "faults/core/duration.h"
#include "faults/core/fault.h"
#include "faults/core/rng.h"
#include "faults/io/spec.h"

namespace faultline::controller {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using v1::Check;

std::shared_ptr<v1::Agent::StubInterface> ConnectInsecure(const std::string& address) {
  return v1::Agent::NewStub(transport::Dial(address, {}));
}

AgentConnector ConnectWith(transport::TlsFiles tls) {
  return [tls = std::move(tls)](const std::string& address) {
    return std::shared_ptr<v1::Agent::StubInterface>(
        v1::Agent::NewStub(transport::Dial(address, tls)));
  };
}

namespace {

std::unique_ptr<grpc::ClientContext> Ctx(milliseconds timeout = milliseconds(5000)) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

std::string RpcMessage(const grpc::Status& s) {
  return std::to_string(int(s.error_code())) + " " + s.error_message();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = size_t(std::ceil(p / 100.0 * double(v.size())));
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

std::string Secs(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2fs", s);
  return b;
}
std::string Ms(double ms) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1fms", ms);
  return b;
}

std::string FaultKind(const v1::FaultSpec& spec) {
  std::string family = faults::FamilyOf(spec);
  if (family.empty()) return "unknown";
  if (spec.has_process()) family += "/" + v1::ProcessFault::Action_Name(spec.process().action());
  return family;
}

// Agents are driven concurrently (up to this many RPCs in flight) so a fault reaches a large
// fleet at nearly the same moment instead of one agent after another.
constexpr size_t kFanout = 32;

void ParallelFor(size_t n, const std::function<void(size_t)>& fn) {
  if (n <= 1) {
    if (n == 1) fn(0);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (size_t w = 0; w < std::min(n, kFanout); ++w) {
    threads.emplace_back([&] {
      for (size_t i; (i = next++) < n;) fn(i);
    });
  }
  for (auto& t : threads) t.join();
}

struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("cancelled") {}
};

class Run {
 public:
  Run(const v1::Experiment& exp, const RunOptions& opt) : exp_(exp), opt_(opt) {
    result_.run_id = opt.run_id.empty() ? NewRunId(exp.name()) : opt.run_id;
    result_.experiment = exp.name();
    result_.source = exp.source();
    result_.seed = exp.seed();
  }

  RunResult Execute();

 private:
  void Event(TimelineEvent e) {
    std::lock_guard lock(mu_);
    e.t = Now();
    result_.events.push_back(e);
    if (opt_.on_event) opt_.on_event(e);
  }
  double Now() const { return std::chrono::duration<double>(steady_clock::now() - t0_).count(); }
  bool IsCancelled() const { return opt_.cancel && opt_.cancel->load(); }
  // Sleeps up to `d`, waking early when the run is cancelled or stopping.
  // The cancel flag is set from outside without a notify, so look at it every 50 ms.
  void Sleep(std::chrono::nanoseconds d) {
    auto until = steady_clock::now() + d;
    std::unique_lock lock(wake_mu_);
    while (!stopping_ && !IsCancelled() && steady_clock::now() < until) {
      wake_.wait_for(
          lock, std::min<steady_clock::duration>(until - steady_clock::now(), milliseconds(50)));
    }
    if (IsCancelled()) throw Cancelled();
  }
  v1::Agent::StubInterface& Stub(const std::string& address) {
    std::lock_guard lock(mu_);
    auto& s = stubs_[address];
    if (!s) s = opt_.connect(address);
    return *s;
  }
  std::string MemberOf(const AgentInfo& a) const {
    auto it = a.labels.find(opt_.member_label);
    return it == a.labels.end() ? "" : it->second;
  }

  // The io family maps chaos-mesh's volumePath onto this agent's overlays (faults/io/spec.h).
  std::string MapVolume(const AgentInfo& info, v1::IoFault* io) {
    v1::OverlayResponse resp;
    auto st = Stub(info.address).ListOverlays(Ctx().get(), {}, &resp);
    if (!st.ok()) return "";
    return faults::io::MapVolume({resp.mounts().begin(), resp.mounts().end()}, io);
  }
  void DiscoverCluster();
  ClusterView View(LeaderSample* sample);
  void WatchLeaders();
  bool RenewAll();
  void RunStep(const v1::Step& step, const std::string& path);
  // The etcd client options of the run (TLS) with this per-RPC timeout.
  verify::ClientOptions EtcdOptions(milliseconds timeout) const;
  // A selector's agents: resolved now, or those of the earlier step it names (sameAs).
  std::vector<size_t> Targets(const v1::TargetSelector& sel, const ClusterView& view,
                              faults::Rng& rng);
  void RunFaultStep(const v1::Step& step, const std::string& path);
  void RecoverAll(const std::string& why);
  void RunChecks(HistoryLoad* history);
  CheckOutcome WaitHealthy(double* healthy_at);

  const v1::Experiment& exp_;
  const RunOptions& opt_;
  RunResult result_;
  steady_clock::time_point t0_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<v1::Agent::StubInterface>> stubs_;
  std::set<std::string> injected_agents_;  // agents holding (or having held) faults of the run
  // The agents each named fault step hit, for later steps' `sameAs`.
  std::map<std::string, std::vector<size_t>> step_targets_;
  std::map<uint64_t, std::string> member_names_;        // etcd member id -> name
  std::map<std::string, std::string> member_endpoint_;  // member name -> client endpoint
  // One channel per member, in member_endpoint_'s order: checks use etcd_; the leader view
  // uses status_ with a short deadline, so a paused member costs a sample little time.
  std::unique_ptr<verify::EtcdClient> etcd_, status_;
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::string last_view_;
};

verify::ClientOptions Run::EtcdOptions(milliseconds timeout) const {
  verify::ClientOptions o = opt_.etcd_client;
  o.timeout = timeout;
  return o;
}

void Run::DiscoverCluster() {
  // No etcd at all (plain process fleets, the fan-out bench): labels-only targets, no checks.
  if (opt_.etcd_endpoints.empty()) return;
  std::string err;
  for (const auto& ep : opt_.etcd_endpoints) {
    try {
      auto members = verify::EtcdClient({ep}, EtcdOptions(milliseconds(2000))).MemberList(0);
      for (const auto& m : members.members()) {
        member_names_[m.id()] = m.name();
        result_.members.push_back(m.name());
        // Prefer the endpoint the user gave (it is reachable from here) over advertised URLs.
        std::string chosen = m.clienturls().empty() ? "" : m.clienturls(0);
        for (const auto& given : opt_.etcd_endpoints) {
          for (const auto& u : m.clienturls()) {
            if (u == given || u.ends_with("//" + given)) chosen = given;
          }
        }
        member_endpoint_[m.name()] = chosen;
      }
      std::vector<std::string> endpoints;
      for (const auto& [name, e] : member_endpoint_) endpoints.push_back(e);
      etcd_ = std::make_unique<verify::EtcdClient>(endpoints, EtcdOptions(milliseconds(2000)));
      status_ = std::make_unique<verify::EtcdClient>(endpoints, EtcdOptions(milliseconds(800)));
      return;
    } catch (const std::exception& e) {
      err = e.what();
      member_names_.clear();
      member_endpoint_.clear();
      result_.members.clear();
    }
  }
  throw std::runtime_error("cannot read the etcd member list: " + err);
}

ClusterView Run::View(LeaderSample* sample) {
  ClusterView v;
  if (!status_) return v;
  // Asked in parallel, each member about itself: who it follows ("" none, "?" no answer).
  std::vector<verify::MemberStatus> statuses = verify::CollectStatus(*status_);
  std::map<std::string, int> votes;
  std::map<std::string, std::string> own;  // member -> whom it names
  size_t i = 0;
  for (const auto& [name, ep] : member_endpoint_) {
    v.members.push_back(name);
    const verify::MemberStatus& st = statuses[i++];
    std::string leader = !st.answered                     ? "?"
                         : st.leader == 0                 ? ""
                         : member_names_.count(st.leader) ? member_names_.at(st.leader)
                                                          : std::to_string(st.leader);
    if (sample) sample->leader_by_member[name] = leader;
    own[name] = leader;
    if (!leader.empty() && leader != "?") ++votes[leader];
  }
  // The leader is the one a quorum of members names and that answers as leader itself:
  // followers keep naming a paused leader until their election timeout, and that stale view
  // must not count as having a leader.
  for (const auto& [l, n] : votes) {
    if (size_t(n) * 2 > v.members.size() && own[l] == l) v.leader = l;
  }
  return v;
}

void Run::WatchLeaders() {
  while (true) {
    {
      std::unique_lock lock(wake_mu_);
      if (stopping_) return;
    }
    LeaderSample s;
    s.t = Now();
    View(&s);
    std::string desc;
    for (const auto& [m, l] : s.leader_by_member) desc += m + "->" + (l.empty() ? "none" : l) + " ";
    {
      std::lock_guard lock(mu_);
      result_.leaders.push_back(s);
    }
    if (desc != last_view_) {
      Event({0, "leader.change", "", "", "", "", "leader per member: " + desc});
      last_view_ = desc;
    }
    std::unique_lock lock(wake_mu_);
    wake_.wait_for(lock, opt_.leader_interval, [&] { return stopping_; });
  }
}

bool Run::RenewAll() {
  std::set<std::string> agents;
  {
    std::lock_guard lock(mu_);
    agents = injected_agents_;
  }
  std::vector<std::string> list(agents.begin(), agents.end());
  std::atomic<bool> ok{true};
  ParallelFor(list.size(), [&](size_t k) {
    const auto& a = list[k];
    v1::RenewRequest req;
    req.set_experiment_id(result_.run_id);
    faults::ToProto(opt_.lease, req.mutable_lease());
    v1::RenewResponse resp;
    auto st = Stub(a).Renew(Ctx(milliseconds(2000)).get(), req, &resp);
    if (!st.ok()) {
      ok = false;
      Event({0, "error", "", a, "", "", "lease renewal failed: " + RpcMessage(st)});
    }
  });
  return ok;
}

void Run::RunStep(const v1::Step& step, const std::string& path) {
  if (IsCancelled()) throw Cancelled();
  std::string name = step.name().empty() ? path : step.name();
  if (step.has_fault()) {
    RunFaultStep(step, name);
  } else if (step.has_wait()) {
    Event({0, "step.start", name, "", "", "",
           "wait " + faults::FormatDuration(faults::FromProto(step.wait()))});
    Sleep(faults::FromProto(step.wait()));
    Event({0, "step.end", name, "", "", "", ""});
  } else if (step.parallel_size() > 0) {
    Event({0, "step.start", name, "", "", "", "parallel group"});
    std::vector<std::future<void>> fs;
    for (int i = 0; i < step.parallel_size(); ++i) {
      fs.push_back(std::async(std::launch::async, [&, i] {
        RunStep(step.parallel(i), name + ".parallel[" + std::to_string(i) + "]");
      }));
    }
    std::exception_ptr first;
    for (auto& f : fs) {
      try {
        f.get();
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    }
    if (first) std::rethrow_exception(first);
    Event({0, "step.end", name, "", "", "", ""});
  } else {
    for (int i = 0; i < step.serial_size(); ++i) {
      RunStep(step.serial(i), name + ".serial[" + std::to_string(i) + "]");
    }
  }
}

std::vector<size_t> Run::Targets(const v1::TargetSelector& sel, const ClusterView& view,
                                 faults::Rng& rng) {
  if (sel.same_as().empty()) return ResolveTargets(sel, opt_.agents, view, rng, opt_.member_label);
  std::lock_guard lock(mu_);
  auto it = step_targets_.find(sel.same_as());
  // The loader checks that the step comes earlier; it may still have failed before targeting.
  if (it == step_targets_.end()) {
    throw std::invalid_argument("target.sameAs: step \"" + sel.same_as() + "\" hit no agents");
  }
  return it->second;
}

void Run::RunFaultStep(const v1::Step& step, const std::string& name) {
  LeaderSample s;
  ClusterView view = View(nullptr);
  faults::Rng rng = faults::Rng(exp_.seed()).Fork("targets." + name);
  std::vector<size_t> targets;
  try {
    targets = Targets(step.target(), view, rng);
  } catch (const std::exception& e) {
    throw std::runtime_error("step " + name + ": " + e.what());
  }
  if (!step.name().empty()) {
    std::lock_guard lock(mu_);
    step_targets_[step.name()] = targets;
  }
  auto duration = faults::FromProto(step.duration());
  std::string who;
  for (size_t i : targets) {
    who += (who.empty() ? "" : ", ") +
           (MemberOf(opt_.agents[i]).empty() ? opt_.agents[i].address : MemberOf(opt_.agents[i]));
  }
  Event({0, "step.start", name, "", "", "",
         FaultKind(step.fault()) + " for " + faults::FormatDuration(duration) + " on [" + who +
             "] (" + Describe(step.target()) + ", leader " +
             (view.leader.empty() ? "none" : view.leader) + ")"});
  struct Applied {
    size_t agent;
    std::string id;
    size_t window;
  };
  std::vector<Applied> applied;
  std::mutex applied_mu;
  auto revert_applied = [&](const std::string& reason) {
    ParallelFor(applied.size(), [&](size_t k) {
      const auto& a = applied[k];
      v1::RecoverRequest req;
      req.set_fault_id(a.id);
      v1::RecoverResponse resp;
      const auto& info = opt_.agents[a.agent];
      auto st = Stub(info.address).Recover(Ctx().get(), req, &resp);
      {
        std::lock_guard lock(mu_);
        result_.windows[a.window].end = Now();
      }
      if (st.ok()) {
        Event({0, "fault.reverted", name, info.address, MemberOf(info), a.id, reason});
      } else {
        Event({0, "error", name, info.address, MemberOf(info), a.id,
               "recover failed (the lease will revert it): " + RpcMessage(st)});
      }
    });
  };
  try {
    {
      std::lock_guard lock(mu_);
      for (size_t i : targets) injected_agents_.insert(opt_.agents[i].address);
    }
    // Network faults aimed at other members (a partition): `peer` selects them and their
    // addresses (host of each member's client URL) become the fault's destinations.
    std::vector<std::pair<std::string, std::string>> peers;  // member, host
    if (step.has_peer()) {
      faults::Rng prng = faults::Rng(exp_.seed()).Fork("peers." + name);
      for (size_t i : Targets(step.peer(), view, prng)) {
        std::string m = MemberOf(opt_.agents[i]);
        auto it = member_endpoint_.find(m);
        if (m.empty() || it == member_endpoint_.end()) {
          throw std::runtime_error("step " + name + ": peer " + opt_.agents[i].address +
                                   " is not tied to an etcd member, so its address is unknown");
        }
        std::string host = it->second;
        if (auto p = host.find("://"); p != std::string::npos) host = host.substr(p + 3);
        host = host.substr(0, host.rfind(':'));
        peers.emplace_back(m, host);
      }
    }
    std::vector<std::string> errors(targets.size());
    ParallelFor(targets.size(), [&](size_t k) {
      const auto& info = opt_.agents[targets[k]];
      try {
        v1::InjectRequest req;
        *req.mutable_spec() = step.fault();
        if (step.has_peer() && req.spec().has_net()) {
          for (const auto& [m, host] : peers) {
            if (m != MemberOf(info)) req.mutable_spec()->mutable_net()->add_to(host);
          }
          if (req.spec().net().to_size() == 0) {
            throw std::runtime_error("peer selects no member other than the target itself");
          }
        }
        SubstituteLabels(req.mutable_spec(), info.labels);
        std::string mapped;
        if (req.spec().has_io()) mapped = MapVolume(info, req.mutable_spec()->mutable_io());
        faults::ToProto(duration, req.mutable_spec()->mutable_duration());
        // The same experiment seed gives every (step, agent) its own reproducible stream.
        req.mutable_spec()->set_seed(
            faults::Rng(exp_.seed()).Fork("fault." + name + "." + info.address).Next());
        req.set_experiment_id(result_.run_id);
        faults::ToProto(opt_.lease, req.mutable_lease());
        v1::InjectResponse resp;
        auto st = Stub(info.address).Inject(Ctx().get(), req, &resp);
        if (!st.ok()) {
          errors[k] = "step " + name + ": inject on " + info.address + " (" + MemberOf(info) +
                      "): " + RpcMessage(st);
          return;
        }
        size_t w;
        {
          std::lock_guard lock(mu_);
          result_.windows.push_back(
              {name, info.address, MemberOf(info), resp.fault().id(),
               resp.fault().kind().empty() ? FaultKind(step.fault()) : resp.fault().kind(), Now(),
               -1});
          w = result_.windows.size() - 1;
        }
        {
          std::lock_guard lock(applied_mu);
          applied.push_back({targets[k], resp.fault().id(), w});
        }
        Event({0, "fault.applied", name, info.address, MemberOf(info), resp.fault().id(),
               resp.fault().description() + mapped});
      } catch (const std::exception& e) {
        errors[k] = "step " + name + ": " + info.address + ": " + e.what();
      }
    });
    for (const auto& e : errors) {
      if (!e.empty()) throw std::runtime_error(e);
    }
    Sleep(duration);
  } catch (...) {
    revert_applied("step aborted");
    throw;
  }
  // The agent ends the fault at its duration too; recovering by id makes the end exact and is
  // harmless if it already ended.
  revert_applied("duration");
  Event({0, "step.end", name, "", "", "", ""});
}

void Run::RecoverAll(const std::string& why) {
  std::set<std::string> agents;
  {
    std::lock_guard lock(mu_);
    agents = injected_agents_;
  }
  std::vector<std::string> list(agents.begin(), agents.end());
  ParallelFor(list.size(), [&](size_t k) {
    const auto& a = list[k];
    v1::RecoverRequest req;
    req.set_experiment_id(result_.run_id);
    v1::RecoverResponse resp;
    auto st = Stub(a).Recover(Ctx().get(), req, &resp);
    if (!st.ok()) {
      Event({0, "error", "", a, "", "", "recover by experiment failed: " + RpcMessage(st)});
      return;
    }
    for (const auto& f : resp.faults()) {
      std::lock_guard lock(mu_);
      for (auto& w : result_.windows) {
        if (w.fault_id == f.id() && w.end < 0) w.end = Now();
      }
    }
    if (resp.faults_size() > 0) {
      Event({0, "fault.reverted", "", a, "", "",
             std::to_string(resp.faults_size()) + " fault(s) recovered: " + why});
    }
  });
}

CheckOutcome Run::WaitHealthy(double* healthy_at) {
  CheckOutcome c;
  c.name = "HEALTH";
  auto deadline = steady_clock::now() + opt_.healthy_timeout;
  LeaderSample last;
  while (true) {
    LeaderSample s;
    ClusterView v = View(&s);
    bool all = !v.leader.empty();
    for (const auto& [m, l] : s.leader_by_member) all = all && l == v.leader;
    last = s;
    if (all) {
      *healthy_at = Now();
      c.passed = true;
      c.summary = "every member answers and agrees the leader is " + v.leader;
      break;
    }
    if (steady_clock::now() > deadline) {
      c.summary = "the cluster was not healthy within " +
                  faults::FormatDuration(opt_.healthy_timeout) + " after the run";
      break;
    }
    std::this_thread::sleep_for(milliseconds(250));
  }
  c.evidence["leader_by_member"] = last.leader_by_member;
  return c;
}

void Run::RunChecks(HistoryLoad* history) {
  std::vector<Check> checks;
  for (int c : exp_.checks()) checks.push_back(static_cast<Check>(c));
  if (checks.empty()) {
    checks = {v1::HEALTH, v1::CONVERGENCE, v1::REVISIONS, v1::KEY_DIFF, v1::HASHKV, v1::ALARMS};
    if (history) checks.push_back(v1::LOST_WRITES);
  }
  double healthy_at = -1;
  // Health first: the other checks compare members and need all of them answering.
  CheckOutcome health = WaitHealthy(&healthy_at);
  // The cluster checks are controller/verify's, the same `faultline check etcd` runs.
  auto cluster = [](const verify::CheckResult& r) {
    CheckOutcome c;
    c.passed = r.passed;
    c.summary = r.summary;
    c.evidence = r.evidence;
    return c;
  };
  for (Check ck : checks) {
    CheckOutcome c;
    c.name = v1::Check_Name(ck);
    try {
      switch (ck) {
        case v1::HEALTH:
          c = health;
          break;
        case v1::CONVERGENCE:
          c = cluster(verify::CheckConvergence(*etcd_, milliseconds(10000)));
          break;
        case v1::REVISIONS:
          c = cluster(verify::CheckRevisions(*etcd_));
          break;
        case v1::KEY_DIFF:
          c = cluster(verify::CheckKeyCounts(*etcd_, {}));
          break;
        case v1::HASHKV:
          c = cluster(verify::CheckHashKV(*etcd_));
          break;
        case v1::ALARMS:
          c = cluster(verify::CheckAlarms(*etcd_));
          break;
        case v1::LOST_WRITES:
        case v1::LINEARIZABILITY:
        case v1::WATCH_ORDER:
        case v1::WATCH:
        case v1::LEASES:
        case v1::PAST_READS:
          if (history) {
            // WATCH gives one result per guarantee; the others one.
            auto rs = history->Check(v1::Check_Name(ck));
            for (size_t i = 0; i + 1 < rs.size(); ++i) result_.checks.push_back(rs[i]);
            c = rs.back();
          } else {
            c.summary = "no workload history was recorded (workload kind none)";
          }
          break;
        default:
          c.summary = "this controller build cannot run " + c.name +
                      " (it needs the controller/verify history checker)";
          c.evidence["reason"] = "not available";
          break;
      }
    } catch (const std::exception& e) {
      c.passed = false;
      c.summary = std::string("check could not run: ") + e.what();
    }
    if (c.name.find('/') == std::string::npos) c.name = v1::Check_Name(ck);
    result_.checks.push_back(c);
  }

  // SLOs.
  double first_fault = -1, last_end = -1;
  for (const auto& w : result_.windows) {
    if (first_fault < 0 || w.start < first_fault) first_fault = w.start;
    last_end = std::max(last_end, w.end < 0 ? Now() : w.end);
  }
  const auto& slo = exp_.slo();
  if (slo.has_p99_latency() && faults::FromProto(slo.p99_latency()).count() > 0) {
    CheckOutcome c;
    c.name = "p99_latency";
    c.slo = true;
    std::vector<double> during;
    for (const auto& w : result_.windows) {
      if (!history) break;
      auto v = history->LatenciesBetween(w.start, w.end < 0 ? 1e18 : w.end);
      during.insert(during.end(), v.begin(), v.end());
    }
    double limit =
        std::chrono::duration<double, std::milli>(faults::FromProto(slo.p99_latency())).count();
    double p99 = Percentile(during, 99);
    c.evidence = {{"p99_ms", p99}, {"limit_ms", limit}, {"samples", during.size()}};
    c.passed = !during.empty() && p99 <= limit;
    c.summary = during.empty() ? "no successful request while a fault was active"
                               : "p99 " + Ms(p99) + " during faults (limit " + Ms(limit) + ")";
    result_.checks.push_back(c);
  }
  if (slo.has_time_to_leader() && faults::FromProto(slo.time_to_leader()).count() > 0) {
    CheckOutcome c;
    c.name = "time_to_leader";
    c.slo = true;
    // A working leader: named by a quorum and answering as leader itself. The SLO is the
    // longest span after the first fault without one; when the fault cost the leader, the span
    // runs from the fault's start (the old leader stopped serving then, whatever the followers
    // still believed) to the first sample showing the new one. Resolution: the sample interval.
    auto working = [](const LeaderSample& s) -> std::string {
      std::map<std::string, int> votes;
      for (const auto& [m, l] : s.leader_by_member) {
        if (!l.empty() && l != "?") ++votes[l];
      }
      for (const auto& [l, n] : votes) {
        auto self = s.leader_by_member.find(l);
        if (size_t(n) * 2 > s.leader_by_member.size() && self != s.leader_by_member.end() &&
            self->second == l) {
          return l;
        }
      }
      return "";
    };
    std::string before;
    for (const auto& s : result_.leaders) {
      if (s.t < first_fault) before = working(s);
    }
    double worst = 0, lost_at = -1;
    bool replaced = false;
    for (const auto& s : result_.leaders) {
      if (first_fault < 0 || s.t < first_fault) continue;
      std::string l = working(s);
      if (l.empty() && lost_at < 0) lost_at = s.t;
      if (!l.empty() && lost_at >= 0) {
        worst = std::max(worst, s.t - lost_at);
        lost_at = -1;
      }
      if (!replaced && !l.empty() && !before.empty() && l != before) {
        replaced = true;
        worst = std::max(worst, s.t - first_fault);
      }
    }
    bool never = lost_at >= 0;
    double limit = std::chrono::duration<double>(faults::FromProto(slo.time_to_leader())).count();
    double interval = std::chrono::duration<double>(opt_.leader_interval).count();
    c.evidence = {{"worst_s", worst},           {"limit_s", limit},
                  {"leader_before", before},    {"leader_replaced", replaced},
                  {"leaderless_at_end", never}, {"sample_interval_s", interval}};
    c.passed = !never && worst <= limit;
    c.summary = never ? "no leader at the end of the run"
                      : "leader available again within " + Secs(worst) + " (limit " + Secs(limit) +
                            ", sampled every " + Secs(interval) + ")";
    result_.checks.push_back(c);
  }
  if (slo.has_time_to_healthy() && faults::FromProto(slo.time_to_healthy()).count() > 0) {
    CheckOutcome c;
    c.name = "time_to_healthy";
    c.slo = true;
    double limit = std::chrono::duration<double>(faults::FromProto(slo.time_to_healthy())).count();
    // The first sample after the last fault ended in which every member agreed on a leader.
    double at = -1;
    for (const auto& s : result_.leaders) {
      if (s.t < last_end) continue;
      std::set<std::string> ls;
      for (const auto& [m, l] : s.leader_by_member) ls.insert(l);
      if (ls.size() == 1 && !ls.begin()->empty() && *ls.begin() != "?") {
        at = s.t;
        break;
      }
    }
    if (at < 0) at = healthy_at;
    double took = at < 0 ? -1 : std::max(0.0, at - std::max(0.0, last_end));
    c.evidence = {{"seconds", took}, {"limit_s", limit}};
    c.passed = took >= 0 && took <= limit;
    c.summary = took < 0 ? "never healthy after the faults"
                         : "healthy " + Secs(took) + " after the last fault ended";
    result_.checks.push_back(c);
  }
}

RunResult Run::Execute() {
  t0_ = steady_clock::now();
  result_.started_at_unix =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  Event({0, "run.start", "", "", "", "", "run " + result_.run_id + " of " + exp_.name()});
  std::thread watcher, renewer;
  std::unique_ptr<HistoryLoad> history;
  auto stop_threads = [&] {
    {
      std::lock_guard lock(wake_mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (watcher.joinable()) watcher.join();
    if (renewer.joinable()) renewer.join();
  };
  try {
    if (opt_.agents.empty()) throw std::runtime_error("no agents to run against");
    DiscoverCluster();
    if (!member_endpoint_.empty()) watcher = std::thread([this] { WatchLeaders(); });
    renewer = std::thread([this] {
      SteadyClock clock;
      LeaseKeeper keeper(clock, opt_.lease, [this] { return RenewAll(); });
      std::unique_lock lock(wake_mu_);
      while (!stopping_) {
        wake_.wait_until(lock, keeper.NextDue(), [&] { return stopping_; });
        if (stopping_) break;
        lock.unlock();
        keeper.Tick();
        lock.lock();
      }
    });
    std::vector<std::string> endpoints;
    for (const auto& [m, ep] : member_endpoint_) endpoints.push_back(ep);
    bool watch = false;
    for (int c : exp_.checks()) watch = watch || c == v1::WATCH_ORDER || c == v1::WATCH;
    if (exp_.workload().kind() != v1::Workload::NONE && !endpoints.empty()) {
      history = std::make_unique<HistoryLoad>(exp_.workload(), endpoints, exp_.seed(),
                                              "/faultline/" + result_.run_id + "/", watch,
                                              opt_.etcd_client);
      history->Start(Now());
    }
    if (exp_.workload().has_warmup()) Sleep(faults::FromProto(exp_.workload().warmup()));
    for (int i = 0; i < exp_.steps_size(); ++i) {
      RunStep(exp_.steps(i), "steps[" + std::to_string(i) + "]");
    }
    if (exp_.workload().has_cooldown()) Sleep(faults::FromProto(exp_.workload().cooldown()));
    if (history) history->Stop();
    RecoverAll("end of run");
    if (!member_endpoint_.empty()) RunChecks(history.get());
    result_.state = result_.failing().empty() ? "passed" : "failed";
  } catch (const Cancelled&) {
    result_.state = "cancelled";
    result_.error = "the run was cancelled";
    Event({0, "error", "", "", "", "", "cancelled"});
  } catch (const std::exception& e) {
    result_.state = "error";
    result_.error = e.what();
    Event({0, "error", "", "", "", "", e.what()});
  }
  if (result_.state == "cancelled" || result_.state == "error") {
    if (history) history->Stop();
    RecoverAll(result_.state);
  }
  stop_threads();
  if (history) result_.latency = history->PerSecond();
  result_.duration_s = Now();
  Event({0, "run.end", "", "", "", "", result_.state});
  return result_;
}

}  // namespace

std::string NewRunId(const std::string& experiment_name) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  std::random_device rd;
  char hex[8];
  std::snprintf(hex, sizeof hex, "%04x", rd() & 0xffff);
  std::string name = experiment_name.empty() ? "run" : experiment_name;
  return name + "-" + buf + "-" + hex;
}

std::vector<AgentInfo> DescribeAgents(const std::vector<std::string>& addresses,
                                      const AgentConnector& connect) {
  std::vector<AgentInfo> out;
  for (const auto& a : addresses) {
    auto stub = connect(a);
    v1::CapabilitiesResponse resp;
    auto st = stub->Capabilities(Ctx().get(), {}, &resp);
    if (!st.ok()) throw std::runtime_error("agent " + a + " does not answer: " + RpcMessage(st));
    AgentInfo info;
    info.address = a;
    info.hostname = resp.hostname();
    info.labels.insert(resp.labels().begin(), resp.labels().end());
    out.push_back(std::move(info));
  }
  return out;
}

RunResult RunExperiment(const v1::Experiment& experiment, const RunOptions& options) {
  Run run(experiment, options);
  return run.Execute();
}

}  // namespace faultline::controller
