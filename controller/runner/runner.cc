#include "controller/runner/runner.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "controller/runner/history_load.h"
#include "controller/runner/lease_keeper.h"
#include "controller/runner/slo.h"
#include "controller/verify/checks.h"
#include "controller/verify/client.h"
#include "controller/verify/liveness_agents.h"
#include "faults/core/duration.h"
#include "faults/core/fault.h"
#include "faults/core/lateness.h"
#include "faults/core/rng.h"
#include "faults/io/spec.h"
#include "faults/net/addr.h"
#include "faults/specs/specs.h"

namespace faultline::controller {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using v1::Check;

namespace {

struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("cancelled") {}
};

class Run {
 public:
  Run(const v1::Experiment& exp, const RunOptions& opt)
      : exp_(exp), opt_(opt), fleet_(opt.connect, opt.fence) {
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
  std::string MemberOf(const AgentInfo& a) const {
    auto it = a.labels.find(opt_.member_label);
    return it == a.labels.end() ? "" : it->second;
  }

  // The io family maps chaos-mesh's volumePath onto this agent's overlays (faults/io/spec.h).
  std::string MapVolume(const AgentInfo& info, v1::IoFault* io) {
    v1::OverlayResponse resp;
    auto st = fleet_.ListOverlays(info.address, &resp);
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
  // process/rejoin: the member as the cluster knows it now, and the start arguments of the
  // empty member that will take its place (--initial-cluster, state existing).
  struct Rejoin {
    std::string member;
    uint64_t old_id = 0;
    std::vector<std::string> peer_urls;
  };
  Rejoin PrepareRejoin(const std::string& step, const std::vector<size_t>& targets,
                       v1::ProcessFault* f);
  // While the agent holds the member down, emptied: remove it from the cluster and add it back
  // under a new id, asked of the other members.
  void ReplaceMember(const std::string& step, const Rejoin& r);
  // Calls `call` on each member other than `member` in turn until one answers.
  // `refused` (optional) gets the refusals before the answer, e.g. "etcdserver: unhealthy
  // cluster" while the cluster still counts the stopped member as connected.
  template <typename Call>
  auto AskOthers(const std::string& member, Call call, std::vector<std::string>* refused = nullptr)
      -> decltype(call(size_t{0}));
  void RecoverAll(const std::string& why);
  // The experiment's checks (HEALTH first), then its SLOs.
  void RunChecks(HistoryLoad* history);
  // The SLOs on what the run recorded; `healthy_at`: when the post-run health wait saw the
  // cluster healthy (-1 never).
  void EvaluateSlos(const HistoryLoad* history, double healthy_at);
  CheckOutcome WaitHealthy(double* healthy_at);
  // Every agent's supervised processes (asked in parallel); an agent that did not answer is one
  // entry with `answered` false.
  std::vector<verify::SupervisedProcess> SupervisedProcesses();
  // The members whose etcd is not running and that nothing will start again (their agent's
  // restart policy is "never"), each with what it last did; empty when none is known to be.
  std::vector<std::string> DownForGood();
  // Member liveness from the run's agents: their supervised etcd's exits since the run started.
  // `no_evidence`: no agent supervises etcd.
  CheckOutcome Liveness(bool* no_evidence);
  // Liveness for a run that did not list it: added when some agent supervises etcd, otherwise
  // noted on the timeline (a fleet without managed etcd has nothing to judge, which is no pass).
  void AddLiveness();

  const v1::Experiment& exp_;
  const RunOptions& opt_;
  RunResult result_;
  steady_clock::time_point t0_;
  std::mutex mu_;
  AgentFleet fleet_;
  std::set<std::string> injected_agents_;  // agents holding (or having held) faults of the run
  // The agents each named fault step hit, for later steps' `sameAs`.
  std::map<std::string, std::vector<size_t>> step_targets_;
  // etcd member id -> name; a rejoin step changes a member's id while the leader watch reads.
  mutable std::mutex names_mu_;
  std::map<uint64_t, std::string> member_names_;
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
  LeaderSample own;
  size_t i = 0;
  for (const auto& [name, ep] : member_endpoint_) {
    v.members.push_back(name);
    const verify::MemberStatus& st = statuses[i++];
    std::lock_guard names(names_mu_);
    own.leader_by_member[name] = !st.answered                     ? "?"
                                 : st.leader == 0                 ? ""
                                 : member_names_.count(st.leader) ? member_names_.at(st.leader)
                                                                  : std::to_string(st.leader);
  }
  v.leader = WorkingLeader(own);
  if (sample) sample->leader_by_member = std::move(own.leader_by_member);
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
    v1::RenewResponse resp;
    auto st = fleet_.Renew(a, result_.run_id, opt_.lease, &resp);
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

template <typename Call>
auto Run::AskOthers(const std::string& member, Call call, std::vector<std::string>* refused)
    -> decltype(call(size_t{0})) {
  if (!etcd_) throw std::runtime_error("no etcd endpoints: the run cannot change membership");
  std::string errors;
  // Membership changes are refused while a leader is being elected or a member is still
  // joining; they settle within seconds.
  const auto deadline = steady_clock::now() + std::chrono::seconds(15);
  while (true) {
    size_t i = 0;
    for (const auto& [name, ep] : member_endpoint_) {
      if (name != member) {
        try {
          return call(i);
        } catch (const verify::EtcdError& e) {
          errors = e.what();
          if (refused) refused->push_back(errors);
        }
      }
      ++i;
    }
    if (steady_clock::now() >= deadline) throw std::runtime_error(errors);
    Sleep(milliseconds(500));
  }
}

Run::Rejoin Run::PrepareRejoin(const std::string& step, const std::vector<size_t>& targets,
                               v1::ProcessFault* f) {
  if (targets.size() != 1) {
    throw std::runtime_error("step " + step + ": rejoin replaces one member at a time; the " +
                             "target selects " + std::to_string(targets.size()) + " agents");
  }
  Rejoin r;
  r.member = MemberOf(opt_.agents[targets[0]]);
  if (r.member.empty() || !member_endpoint_.count(r.member)) {
    throw std::runtime_error("step " + step + ": rejoin needs the target's etcd member; agent " +
                             opt_.agents[targets[0]].address + " names none the cluster lists");
  }
  auto list = AskOthers(r.member, [&](size_t i) { return etcd_->MemberList(i); });
  std::string cluster;
  for (const auto& m : list.members()) {
    if (m.name() == r.member) {
      r.old_id = m.id();
      r.peer_urls.assign(m.peerurls().begin(), m.peerurls().end());
    }
    // A member added but not started yet has no name; it cannot be in --initial-cluster.
    if (m.name().empty()) continue;
    for (const auto& u : m.peerurls()) cluster += (cluster.empty() ? "" : ",") + m.name() + "=" + u;
  }
  if (r.old_id == 0 || r.peer_urls.empty()) {
    throw std::runtime_error("step " + step + ": member " + r.member +
                             " is not in the cluster's member list");
  }
  std::vector<std::string> user(f->start_args().begin(), f->start_args().end());
  f->clear_start_args();
  f->add_start_args("--initial-cluster=" + cluster);
  f->add_start_args("--initial-cluster-state=existing");
  for (const auto& a : user) f->add_start_args(a);
  return r;
}

void Run::ReplaceMember(const std::string& step, const Rejoin& r) {
  const auto t0 = steady_clock::now();
  std::vector<std::string> refused;
  std::string urls;
  for (const auto& u : r.peer_urls) urls += (urls.empty() ? "" : ",") + u;
  try {
    AskOthers(
        r.member, [&](size_t i) { return etcd_->MemberRemove(i, r.old_id); }, &refused);
  } catch (const std::exception& e) {
    throw std::runtime_error("step " + step + ": member remove " + r.member + ": " + e.what());
  }
  uint64_t new_id = 0;
  try {
    new_id = AskOthers(
        r.member,
        [&](size_t i) {
          try {
            return etcd_->MemberAdd(i, r.peer_urls).member().id();
          } catch (const verify::EtcdError&) {
            // An add that timed out may still have been applied: then the URLs are taken, by it.
            auto list = etcd_->MemberList(i);
            for (const auto& m : list.members()) {
              for (const auto& u : m.peerurls()) {
                if (u == r.peer_urls[0] && m.id() != r.old_id) return m.id();
              }
            }
            throw;
          }
        },
        &refused);
  } catch (const std::exception& e) {
    throw std::runtime_error("step " + step + ": member add " + urls + " (" + r.member +
                             ", removed): " + e.what());
  }
  {
    std::lock_guard lock(names_mu_);
    member_names_.erase(r.old_id);
    member_names_[new_id] = r.member;
  }
  const auto took = std::chrono::duration_cast<milliseconds>(steady_clock::now() - t0);
  Event({0, "member.replaced", step, "", r.member, "",
         "removed and added again while down and empty: id " + verify::HexId(r.old_id) + " -> " +
             verify::HexId(new_id) + ", peer " + urls + " (" + std::to_string(took.count()) +
             " ms" +
             (refused.empty() ? std::string()
                              : ", " + std::to_string(refused.size()) +
                                    " refusal(s) before, the last: " + refused.back()) +
             ")"});
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
  v1::FaultSpec fault = step.fault();
  std::optional<Rejoin> rejoin;
  if (fault.has_process() && fault.process().action() == v1::ProcessFault::REJOIN) {
    rejoin = PrepareRejoin(name, targets, fault.mutable_process());
  }
  std::string who;
  for (size_t i : targets) {
    who += (who.empty() ? "" : ", ") +
           (MemberOf(opt_.agents[i]).empty() ? opt_.agents[i].address : MemberOf(opt_.agents[i]));
  }
  Event({0, "step.start", name, "", "", "",
         faults::KindOf(step.fault()) + " for " + faults::FormatDuration(duration) + " on [" + who +
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
      v1::RecoverResponse resp;
      const auto& info = opt_.agents[a.agent];
      auto st = fleet_.RecoverFault(info.address, a.id, &resp);
      std::string accuracy;
      {
        std::lock_guard lock(mu_);
        auto& w = result_.windows[a.window];
        w.end = Now();
        for (const auto& f : resp.faults()) {
          if (f.id() != a.id) continue;
          w.counters = {f.counters().begin(), f.counters().end()};
          w.accuracy = accuracy = faults::DescribeLatenessCounters(w.counters);
        }
      }
      if (st.ok()) {
        Event({0, "fault.reverted", name, info.address, MemberOf(info), a.id,
               accuracy.empty() ? reason : reason + "; " + accuracy});
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
        peers.emplace_back(m, faults::net::EndpointHost(it->second));
      }
    }
    std::vector<std::string> errors(targets.size());
    ParallelFor(targets.size(), [&](size_t k) {
      const auto& info = opt_.agents[targets[k]];
      try {
        v1::InjectRequest req;
        *req.mutable_spec() = fault;
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
        // A rejoin holds its member down until the membership change is done, however long
        // that takes: the run ends it (or its lease does), never its own clock.
        if (!rejoin) faults::ToProto(duration, req.mutable_spec()->mutable_duration());
        // The same experiment seed gives every (step, agent) its own reproducible stream.
        req.mutable_spec()->set_seed(
            faults::Rng(exp_.seed()).Fork("fault." + name + "." + info.address).Next());
        req.set_experiment_id(result_.run_id);
        faults::ToProto(opt_.lease, req.mutable_lease());
        v1::InjectResponse resp;
        auto st = fleet_.Inject(info.address, req, &resp);
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
               resp.fault().kind().empty() ? faults::KindOf(step.fault()) : resp.fault().kind(),
               Now(), -1});
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
    if (rejoin) ReplaceMember(name, *rejoin);
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
    v1::RecoverResponse resp;
    auto st = fleet_.RecoverExperiment(a, result_.run_id, &resp);
    if (!st.ok()) {
      Event({0, "error", "", a, "", "", "recover by experiment failed: " + RpcMessage(st)});
      return;
    }
    for (const auto& f : resp.faults()) {
      std::lock_guard lock(mu_);
      for (auto& w : result_.windows) {
        if (w.fault_id != f.id() || w.end >= 0) continue;
        w.end = Now();
        w.counters = {f.counters().begin(), f.counters().end()};
        w.accuracy = faults::DescribeLatenessCounters(w.counters);
      }
    }
    if (resp.faults_size() > 0) {
      Event({0, "fault.reverted", "", a, "", "",
             std::to_string(resp.faults_size()) + " fault(s) recovered: " + why});
    }
  });
}

std::vector<verify::SupervisedProcess> Run::SupervisedProcesses() {
  std::vector<std::vector<verify::SupervisedProcess>> per_agent(opt_.agents.size());
  ParallelFor(opt_.agents.size(), [&](size_t k) {
    const AgentInfo& a = opt_.agents[k];
    const std::string member = MemberOf(a).empty() ? a.address : MemberOf(a);
    v1::ProcessesResponse resp;
    grpc::Status st = fleet_.Processes(a.address, &resp);
    if (st.ok()) {
      per_agent[k] = verify::FromAgent(resp, member);
    } else {
      per_agent[k].push_back(verify::AgentNotAnswering(member, RpcMessage(st)));
    }
  });
  std::vector<verify::SupervisedProcess> seen;
  for (auto& v : per_agent) {
    for (auto& p : v) seen.push_back(std::move(p));
  }
  return seen;
}

std::vector<std::string> Run::DownForGood() {
  std::vector<std::string> out;
  for (const verify::SupervisedProcess& p : SupervisedProcesses()) {
    if (!p.answered || p.process != "etcd" || p.pid != 0 || p.restart != "never") continue;
    std::string last = "never started";
    if (!p.events.empty()) {
      last = p.events.back().kind;
      if (!p.events.back().cause.empty()) last += ": " + p.events.back().cause;
    }
    out.push_back(p.member);
    out.back().append(" (last: ").append(last).append(")");
  }
  return out;
}

CheckOutcome Run::WaitHealthy(double* healthy_at) {
  CheckOutcome c;
  c.name = "HEALTH";
  auto deadline = steady_clock::now() + opt_.healthy_timeout;
  LeaderSample last;
  // A member whose etcd is down with no restart policy cannot answer however long we wait:
  // seen on two probes 2 s apart (a fault's revert may be restarting it), the wait ends there.
  auto next_probe = steady_clock::now() + std::chrono::seconds(2);
  std::vector<std::string> down;
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
    if (steady_clock::now() >= next_probe) {
      next_probe = steady_clock::now() + std::chrono::seconds(2);
      std::vector<std::string> now_down = DownForGood();
      if (!now_down.empty() && now_down == down) {
        std::string who;
        for (const auto& d : down) who += (who.empty() ? "" : ", ") + d;
        c.summary =
            "the cluster was not healthy after the run and cannot become so: etcd is not "
            "running on " +
            who + " and its agent does not restart it";
        c.evidence["down_for_good"] = down;
        break;
      }
      down = std::move(now_down);
    }
    std::this_thread::sleep_for(milliseconds(250));
  }
  c.evidence["leader_by_member"] = last.leader_by_member;
  return c;
}

CheckOutcome Run::Liveness(bool* no_evidence) {
  const std::vector<verify::SupervisedProcess> seen = SupervisedProcesses();
  verify::LivenessOptions o;
  // Exits before the run are another run's (or the lab's start): the agents remember them.
  o.since_ms = static_cast<int64_t>(result_.started_at_unix * 1000);
  verify::CheckResult r = verify::CheckLiveness(seen, o);
  *no_evidence = r.no_evidence;
  CheckOutcome c;
  c.name = v1::Check_Name(v1::LIVENESS);
  c.passed = r.passed;
  c.summary = r.summary;
  c.evidence = r.evidence;
  return c;
}

void Run::AddLiveness() {
  for (int c : exp_.checks()) {
    if (c == v1::LIVENESS) return;
  }
  bool none = false;
  CheckOutcome c = Liveness(&none);
  if (none) {
    Event({0, "info", "", "", "", "", "liveness not judged: " + c.summary});
    return;
  }
  result_.checks.push_back(std::move(c));
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
        case v1::SERIALIZABLE_READS:
          if (history) {
            // WATCH gives one result per guarantee; the others one.
            auto rs = history->Check(v1::Check_Name(ck));
            for (size_t i = 0; i + 1 < rs.size(); ++i) result_.checks.push_back(rs[i]);
            c = rs.back();
          } else {
            c.summary = "no workload history was recorded (workload kind none)";
          }
          break;
        case v1::LIVENESS: {
          bool none = false;
          c = Liveness(&none);
          break;
        }
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

  EvaluateSlos(history, healthy_at);
}

void Run::EvaluateSlos(const HistoryLoad* history, double healthy_at) {
  using seconds = std::chrono::duration<double>;
  FaultSpan span = SpanOf(result_.windows, Now());
  const auto& slo = exp_.slo();
  if (slo.has_p99_latency() && faults::FromProto(slo.p99_latency()).count() > 0) {
    std::vector<double> during;
    if (history) {
      during = LatenciesDuring(result_.windows, [history](double from, double to) {
        return history->LatenciesBetween(from, to);
      });
    }
    result_.checks.push_back(P99LatencySlo(
        during,
        std::chrono::duration<double, std::milli>(faults::FromProto(slo.p99_latency())).count()));
  }
  if (slo.has_time_to_leader() && faults::FromProto(slo.time_to_leader()).count() > 0) {
    result_.checks.push_back(TimeToLeaderSlo(
        result_.leaders, span.first_start, seconds(faults::FromProto(slo.time_to_leader())).count(),
        seconds(opt_.leader_interval).count()));
  }
  if (slo.has_time_to_healthy() && faults::FromProto(slo.time_to_healthy()).count() > 0) {
    result_.checks.push_back(
        TimeToHealthySlo(result_.leaders, span.last_end, healthy_at,
                         seconds(faults::FromProto(slo.time_to_healthy())).count()));
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
    // Every run: an etcd that died by itself during it fails the run, whatever it listed.
    AddLiveness();
    result_.state = result_.failing().empty() ? v1::Run::PASSED : v1::Run::FAILED;
  } catch (const Cancelled&) {
    result_.state = v1::Run::CANCELLED;
    result_.error = "the run was cancelled";
    Event({0, "error", "", "", "", "", "cancelled"});
  } catch (const std::exception& e) {
    result_.state = v1::Run::ERROR;
    result_.error = e.what();
    Event({0, "error", "", "", "", "", e.what()});
  }
  if (result_.state == v1::Run::CANCELLED || result_.state == v1::Run::ERROR) {
    if (history) history->Stop();
    RecoverAll(StateName(result_.state));
  }
  stop_threads();
  if (history) result_.latency = history->PerSecond();
  result_.duration_s = Now();
  Event({0, "run.end", "", "", "", "", StateName(result_.state)});
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

RunResult RunExperiment(const v1::Experiment& experiment, const RunOptions& options) {
  Run run(experiment, options);
  return run.Execute();
}

}  // namespace faultline::controller
