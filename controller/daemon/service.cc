#include "controller/daemon/service.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <iostream>

#include "controller/runner/report.h"
#include "experiments/loader.h"
#include "faults/core/duration.h"
#include "faults/core/log_line.h"

namespace faultline::controller {

using google::protobuf::util::TimeUtil;
using std::chrono::system_clock;

namespace {

std::string ToJsonString(const google::protobuf::Message& m) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out);
  return out;
}

template <typename M>
bool FromJsonString(const std::string& s, M* m) {
  return google::protobuf::util::JsonStringToMessage(s, m).ok();
}

google::protobuf::Timestamp Ts(system_clock::time_point t) {
  return TimeUtil::NanosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

Seconds NowSeconds() { return std::chrono::floor<std::chrono::seconds>(system_clock::now()); }

void Log(const std::string& msg) { faults::LogLine("faultline-controller", msg); }

v1::ControllerFence FenceOf(const LeadershipTerm& term, const ReplicaInfo& self) {
  v1::ControllerFence f;
  f.set_controller(term.controller);
  f.set_epoch(term.epoch);
  f.set_replica(self.id);
  return f;
}

std::string ValidateCron(const std::string& expr) {
  std::string why;
  return CronSchedule::Parse(expr, &why) ? "" : why;
}

}  // namespace

ControllerService::ControllerService(StateStore& store, Leadership& leadership,
                                     ControllerOptions options)
    : store_(store), leadership_(leadership), opt_(std::move(options)) {}

ControllerService::~ControllerService() { Stop(); }

ControllerService::View ControllerService::Load(bool log) const {
  View v;
  auto schedules = store_.List("schedules");
  for (const auto& [name, doc] : store_.List("experiments")) {
    v1::Experiment e;
    if (!FromJsonString(doc.value("experiment", ""), &e)) {
      if (log) Log("store: experiment " + name + " does not parse; ignored");
      continue;
    }
    v.experiments[e.name()] = e;
    if (e.schedule().cron().empty()) continue;
    auto cron = CronSchedule::Parse(e.schedule().cron());
    if (!cron) continue;
    ScheduleEntry se;
    se.scheduler =
        std::make_unique<Scheduler>(e.name(), *cron, SchedulePolicy::FromProto(e.schedule()));
    se.state.created = NowSeconds();
    if (auto st = schedules.find(e.name()); st != schedules.end()) {
      try {
        se.state = ScheduleState::FromJson(st->second);
      } catch (const std::exception& ex) {
        if (log) Log("store: schedule " + e.name() + ": " + ex.what() + "; starting it afresh");
      }
    }
    v.schedules[e.name()] = std::move(se);
  }
  for (const auto& [id, doc] : store_.List("runs")) {
    auto entry = std::make_unique<RunEntry>();
    if (!FromJsonString(doc.value("run", ""), &entry->run)) continue;
    entry->schedule_run_id = doc.value("schedule_run_id", "");
    entry->started_by = doc.value("started_by", "");
    v.runs[id] = std::move(entry);
  }
  return v;
}

void ControllerService::Start() {
  // The embedded store's sole replica is active before the server listens, as it always was:
  // its first request never meets a controller still loading.
  bool active = leadership_.active() && leadership_.Campaign();
  if (active) BecomeActive();
  role_thread_ = std::thread([this, active] { RoleLoop(active); });
}

// One term after another: campaign, act while active, step down when the term ends. Stop()
// ends the loop and steps down itself (after its runs recorded how they ended).
void ControllerService::RoleLoop(bool active) {
  for (;;) {
    if (!active) {
      if (!leadership_.Campaign()) return;
      BecomeActive();
    }
    active = false;
    leadership_.WaitLost();
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    StepDown(leadership_.lost_reason());
  }
}

bool ControllerService::BecomeActive() {
  const auto& self = leadership_.self();
  Log("active controller: " + self.id + " at " + self.address + "; loading state from " +
      store_.Describe());
  View v;
  for (;;) {
    try {
      v = Load(true);
      break;
    } catch (const std::exception& e) {
      Log("cannot load the state (retrying while active): " + std::string(e.what()));
      {
        std::lock_guard lock(mu_);
        if (stopping_) return false;
      }
      if (!leadership_.active()) return false;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  {
    std::lock_guard lock(mu_);
    role_ = Role::kStarting;
    view_ = std::move(v);
  }
  auto unfenced = RecoverInterrupted();
  std::lock_guard lock(mu_);
  if (stopping_ || !leadership_.active()) return false;
  role_ = Role::kActive;
  scheduling_ = true;
  scheduler_thread_ = std::thread([this] { SchedulerLoop(); });
  if (!unfenced.empty()) {
    refence_thread_ = std::thread([this, u = std::move(unfenced)] { RefenceLoop(u); });
  }
  return true;
}

// Nothing may act on the cluster once another replica can: stop scheduling, cancel every run
// (each recovers its faults before its thread ends) and forget the working set. Its writes are
// refused by then if the term ended; on Stop() they still land.
void ControllerService::StepDown(const std::string& why) {
  {
    std::lock_guard lock(mu_);
    scheduling_ = false;
    for (auto& [id, e] : view_.runs) e->cancel = true;
  }
  wake_.notify_all();
  if (scheduler_thread_.joinable()) scheduler_thread_.join();
  if (refence_thread_.joinable()) refence_thread_.join();
  std::vector<std::thread*> threads;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, e] : view_.runs) {
      if (e->thread.joinable()) threads.push_back(&e->thread);
    }
  }
  for (auto* t : threads) t->join();
  std::lock_guard lock(mu_);
  view_ = View{};
  role_ = Role::kStandby;
  if (!stopping_) Log("standing by (stepped down: " + why + ")");
}

// What the previous process or active replica did not finish. Its faults may still hold (their
// lease has not lapsed if the takeover was quick), so recover them by run id on every agent it
// used, then mark its runs interrupted. Every schedule record still active is finished as
// failed: nothing runs in this process yet, so none of them has a run behind it.
std::vector<ControllerService::Unfenced> ControllerService::RecoverInterrupted() {
  // Recovering with this term's fence also tells each agent the predecessor's term is over.
  const auto term = leadership_.Term();
  std::vector<Unfenced> unfenced;
  try {
    for (const auto& [id, lease] : store_.List("leases")) {
      Unfenced u{id, {}, {}};
      for (const auto& addr : lease.value("agents", std::vector<std::string>{})) {
        std::string failed = RecoverOn(addr, id, term, std::chrono::seconds(5));
        if (!failed.empty()) {
          std::string why = "recover " + id;
          why += " on " + addr;
          why += ": unreachable (its lease ends the faults; called again until it answers): ";
          Log(why + failed);
          u.agents.push_back(addr);
        }
      }
      if (u.agents.empty()) {
        store_.Remove("leases", id);
      } else {
        // Until an unreached agent hears this term it would still take the deposed replica's
        // injects. Past twice the run's lease its faults are long gone: stop calling then.
        const int64_t lease_ms = lease.value("lease_ms", int64_t{60000});
        u.give_up = std::chrono::steady_clock::now() + 2 * std::chrono::milliseconds(lease_ms);
        unfenced.push_back(std::move(u));
      }
    }
    std::lock_guard lock(mu_);
    for (auto& [id, entry] : view_.runs) {
      if (entry->run.state() != v1::Run::RUNNING) continue;
      entry->run.set_state(v1::Run::INTERRUPTED);
      entry->run.set_summary("the controller stopped during the run; its faults were recovered");
      *entry->run.mutable_ended_at() = Ts(system_clock::now());
      PersistRun(*entry);
      Log("run " + id + " marked interrupted");
    }
    for (auto& [name, se] : view_.schedules) {
      if (se.state.active.empty()) continue;
      ScheduleState st = se.state;
      for (const auto& r : se.state.active) se.scheduler->Finished(r.id, NowSeconds(), false, st);
      PersistSchedule(name, st);
      se.state = std::move(st);
    }
  } catch (const std::exception& e) {
    // Fenced (another replica took over meanwhile) or the store is gone: whoever is active next
    // does this again.
    Log("recovering interrupted runs: " + std::string(e.what()));
  }
  return unfenced;
}

std::string ControllerService::RecoverOn(const std::string& addr, const std::string& id,
                                         const std::optional<LeadershipTerm>& term,
                                         std::chrono::seconds deadline) {
  try {
    auto stub = opt_.connect(addr);
    v1::RecoverRequest req;
    req.set_experiment_id(id);
    if (term) *req.mutable_fence() = FenceOf(*term, leadership_.self());
    v1::RecoverResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(system_clock::now() + deadline);
    auto st = stub->Recover(&ctx, req, &resp);
    if (!st.ok()) return st.error_message();
    Log("recovered run " + id + " on " + addr + ": " + std::to_string(resp.faults_size()) +
        " fault(s)");
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

void ControllerService::RefenceLoop(std::vector<Unfenced> pending) {
  const auto term = leadership_.Term();
  std::unique_lock lock(mu_);
  while (scheduling_ && !pending.empty()) {
    wake_.wait_for(lock, std::chrono::seconds(1), [&] { return !scheduling_; });
    if (!scheduling_) break;
    lock.unlock();
    for (auto& u : pending) {
      std::erase_if(u.agents, [&](const std::string& addr) {
        return RecoverOn(addr, u.run_id, term, std::chrono::seconds(2)).empty();
      });
      if (!u.agents.empty()) {
        if (std::chrono::steady_clock::now() < u.give_up) continue;
        std::string who;
        for (const auto& a : u.agents) who += (who.empty() ? "" : ", ") + a;
        Log("run " + u.run_id + ": gave up recovering it on " + who +
            " (unreachable for twice its lease; its faults ended by lease there)");
        u.agents.clear();
      }
      try {
        store_.Remove("leases", u.run_id);
      } catch (const std::exception& e) {
        Log("run " + u.run_id + ": lease record kept: " + e.what());
      }
    }
    std::erase_if(pending, [](const Unfenced& u) { return u.agents.empty(); });
    lock.lock();
  }
}

void ControllerService::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  leadership_.Stop();
  if (role_thread_.joinable()) role_thread_.join();
  StepDown("stopping");
  leadership_.Resign();
}

void ControllerService::PersistRun(const RunEntry& entry) {
  nlohmann::json doc{{"run", ToJsonString(entry.run)},
                     {"schedule_run_id", entry.schedule_run_id},
                     {"started_by", entry.started_by}};
  store_.Put("runs", entry.run.id(), doc);
}

void ControllerService::PersistSchedule(const std::string& name, const ScheduleState& state) {
  store_.Put("schedules", name, state.ToJson());
}

std::vector<std::string> ControllerService::AgentAddresses() {
  std::vector<std::string> out = opt_.static_agents;
  auto now = system_clock::now();
  for (const auto& [addr, a] : AgentsLocked()) {
    // Three missed heartbeats and the agent is not used for new runs.
    if (now - a.last_heartbeat > 3 * opt_.heartbeat_interval) continue;
    if (std::find(out.begin(), out.end(), addr) == out.end()) out.push_back(addr);
  }
  return out;
}

std::string ControllerService::StartRunLocked(const v1::Experiment& exp, const std::string& trigger,
                                              const std::string& schedule_run_id) {
  auto entry = std::make_unique<RunEntry>();
  std::string id = NewRunId(exp.name());
  entry->run.set_id(id);
  entry->run.set_experiment_name(exp.name());
  entry->run.set_state(v1::Run::RUNNING);
  entry->run.set_trigger(trigger);
  *entry->run.mutable_started_at() = Ts(system_clock::now());
  entry->schedule_run_id = schedule_run_id;
  entry->started_by = leadership_.self().id;
  // Taken before the fenced writes below: they succeed only if this term still holds then.
  entry->term = leadership_.Term();
  entry->agents = AgentAddresses();
  // Both written before any fault exists: after a crash the next controller knows where to
  // recover. A refused write (fenced, store down) starts nothing.
  store_.Put("leases", id, {{"agents", entry->agents}, {"lease_ms", opt_.lease.count()}});
  try {
    PersistRun(*entry);
  } catch (...) {
    try {
      store_.Remove("leases", id);
    } catch (const std::exception&) {  // harmless: recovering a run that never ran is a no-op
    }
    throw;
  }
  RunEntry* raw = entry.get();
  view_.runs[id] = std::move(entry);
  raw->thread = std::thread([this, raw, exp] { ExecuteRun(raw, exp); });
  return id;
}

void ControllerService::ExecuteRun(RunEntry* entry, v1::Experiment exp) {
  RunOptions ro;
  ro.run_id = entry->run.id();
  ro.etcd_endpoints = opt_.etcd_endpoints;
  ro.etcd_client = opt_.etcd_client;
  ro.lease = opt_.lease;
  ro.connect = opt_.connect;
  // The term this run started in: if it ends while the run goes on (a stalled replica), agents
  // refuse the run's injects and renewals, and its faults end by their lease.
  if (entry->term) ro.fence = FenceOf(*entry->term, leadership_.self());
  ro.cancel = &entry->cancel;
  ro.on_event = [this, entry](const TimelineEvent& e) {
    std::lock_guard lock(mu_);
    entry->live_events.push_back({{"t", e.t},
                                  {"kind", e.kind},
                                  {"step", e.step},
                                  {"member", e.member},
                                  {"agent", e.agent},
                                  {"fault_id", e.fault_id},
                                  {"message", e.message}});
  };
  RunResult result;
  try {
    // Not the fleet as it is now: an agent that registered since the lease record was written
    // would be one the next active's recovery never tells of its term.
    ro.agents = DescribeAgents(entry->agents, opt_.connect);
    result = RunExperiment(exp, ro);
  } catch (const std::exception& e) {
    result.run_id = entry->run.id();
    result.experiment = exp.name();
    result.state = v1::Run::ERROR;
    result.error = e.what();
  }
  std::lock_guard lock(mu_);
  v1::Run& run = entry->run;
  run.set_state(result.state);
  std::string summary = StateName(result.state);
  for (const auto* c : result.failing()) summary += "; " + c->name + ": " + c->summary;
  if (!result.error.empty()) summary += ": " + result.error;
  run.set_summary(summary);
  run.set_report_json(ToJson(result).dump());
  *run.mutable_ended_at() = Ts(system_clock::now());
  try {
    if (!opt_.reports_dir.empty()) WriteReports(result, opt_.reports_dir / run.id());
    PersistRun(*entry);
    store_.Remove("leases", run.id());
  } catch (const std::exception& e) {
    Log("run " + run.id() + ": cannot store its result: " + e.what());
  }
  auto it = view_.schedules.find(exp.name());
  if (it != view_.schedules.end() && !entry->schedule_run_id.empty()) {
    // Memory follows what happened (the run ended) even if the store refuses: the next write of
    // this schedule carries it.
    it->second.scheduler->Finished(entry->schedule_run_id, NowSeconds(), result.passed(),
                                   it->second.state);
    try {
      PersistSchedule(it->first, it->second.state);
    } catch (const std::exception& e) {
      Log("schedule " + it->first + ": " + e.what());
    }
  }
  Log("run " + run.id() + " ended: " + summary);
  wake_.notify_all();
}

void ControllerService::SchedulerLoop() {
  std::unique_lock lock(mu_);
  while (scheduling_) {
    auto now = NowSeconds();
    std::optional<Seconds> next;
    for (auto& [name, se] : view_.schedules) {
      ScheduleState state = se.state;
      auto decisions = se.scheduler->Due(now, state);
      if (!decisions.empty()) {
        // The decisions are durable before any run starts: a replica taking over (or this one
        // restarted) finds these due times handled and never starts one of them again. If the
        // store refuses, nothing starts and the due times are decided again next round.
        try {
          PersistSchedule(name, state);
        } catch (const std::exception& e) {
          Log("schedule " + name + ": due time not recorded, nothing started: " + e.what());
          continue;
        }
        se.state = std::move(state);
        for (const auto& d : decisions) {
          if (d.kind != Decision::Kind::kStart) {
            Log("schedule " + name + ": " +
                (d.kind == Decision::Kind::kMissed ? "missed " : "skipped (Forbid) ") + d.run.id);
            continue;
          }
          try {
            std::string id = StartRunLocked(view_.experiments.at(name), "schedule", d.run.id);
            Log("schedule " + name + ": started run " + id + " for " + d.run.id);
          } catch (const std::exception& e) {
            Log("schedule " + name + ": " + d.run.id + " not started: " + e.what());
            se.scheduler->Finished(d.run.id, now, false, se.state);
            try {
              PersistSchedule(name, se.state);
            } catch (const std::exception&) {  // the next write of this schedule carries it
            }
          }
        }
      }
      auto w = se.scheduler->NextWake(se.state);
      if (w && (!next || *w < *next)) next = *w;
    }
    // Sleep until the next due time, but never longer than a second so submits and resumes
    // are picked up promptly.
    auto until = system_clock::now() + std::chrono::seconds(1);
    if (next && *next < until) until = *next;
    wake_.wait_until(lock, until);
  }
}

grpc::Status ControllerService::NotActiveLocked() const {
  if (stopping_) return {grpc::StatusCode::UNAVAILABLE, "the controller is stopping"};
  const auto& self = leadership_.self();
  if (role_ == Role::kStarting) {
    return {grpc::StatusCode::UNAVAILABLE,
            "controller " + self.id + " is taking over and loading its state; retry in a moment"};
  }
  auto active = leadership_.Active();
  if (active && active->id != self.id) {
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "controller " + self.id + " is a standby; the active controller is " + active->id +
                " at " + active->address + " (use --controller " + active->address + ")"};
  }
  return {grpc::StatusCode::UNAVAILABLE, "controller " + self.id +
                                             " is a standby and no controller is active yet "
                                             "(election in progress); retry in a few seconds"};
}

namespace {
// A write the store refused: fenced (this replica is no longer active) or unreachable.
grpc::Status StoreFailure(const std::exception& e) {
  if (dynamic_cast<const FencedError*>(&e)) {
    return {grpc::StatusCode::FAILED_PRECONDITION, e.what()};
  }
  return {grpc::StatusCode::UNAVAILABLE, std::string("state store: ") + e.what()};
}
}  // namespace

template <typename F>
grpc::Status ControllerService::Read(F&& answer) {
  {
    std::lock_guard lock(mu_);
    if (role_ == Role::kActive) return answer(view_);
  }
  View v;
  try {
    v = Load(false);
  } catch (const std::exception& e) {
    return {grpc::StatusCode::UNAVAILABLE, std::string("state store: ") + e.what()};
  }
  return answer(v);
}

// An agent's address as a store id: '%', '/' and a leading '.' percent-encoded.
std::string AgentStoreId(const std::string& address) {
  std::string out;
  for (size_t i = 0; i < address.size(); ++i) {
    char c = address[i];
    if (c == '%' || c == '/' || (i == 0 && c == '.')) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

int64_t UnixMs(system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
system_clock::time_point FromUnixMs(int64_t ms) {
  return system_clock::time_point(std::chrono::milliseconds(ms));
}

}  // namespace

void ControllerService::SaveAgent(const AgentEntry& a) {
  store_.PutUnfenced("agents", AgentStoreId(a.reg.address()),
                     {{"agent", ToJsonString(a.reg)},
                      {"registered_ms", UnixMs(a.registered)},
                      {"heartbeat_ms", UnixMs(a.last_heartbeat)},
                      {"via", leadership_.self().id}});
}

std::map<std::string, ControllerService::AgentEntry> ControllerService::AgentsLocked() const {
  if (!store_.shared()) return agents_;
  std::map<std::string, AgentEntry> out;
  for (const auto& [id, doc] : store_.List("agents")) {
    AgentEntry a;
    if (!FromJsonString(doc.value("agent", ""), &a.reg) || a.reg.address().empty()) continue;
    a.registered = FromUnixMs(doc.value("registered_ms", int64_t{0}));
    a.last_heartbeat = FromUnixMs(doc.value("heartbeat_ms", int64_t{0}));
    out[a.reg.address()] = std::move(a);
  }
  return out;
}

grpc::Status ControllerService::Register(grpc::ServerContext*, const v1::RegisterRequest* req,
                                         v1::RegisterResponse* resp) {
  if (req->agent().address().empty()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "agent.address: required"};
  }
  AgentEntry a;
  a.reg = req->agent();
  a.registered = a.last_heartbeat = system_clock::now();
  faults::ToProto(opt_.heartbeat_interval, resp->mutable_heartbeat_interval());
  if (store_.shared()) {
    // Any replica, active or standby, records it where every replica reads it.
    try {
      SaveAgent(a);
    } catch (const std::exception& e) {
      return {grpc::StatusCode::UNAVAILABLE, std::string("state store: ") + e.what()};
    }
    return grpc::Status::OK;
  }
  std::lock_guard lock(mu_);
  agents_[a.reg.address()] = std::move(a);
  return grpc::Status::OK;
}

grpc::Status ControllerService::Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* req,
                                          v1::HeartbeatResponse* resp) {
  if (store_.shared()) {
    try {
      auto doc = store_.Get("agents", AgentStoreId(req->address()));
      AgentEntry a;
      if (!doc || !FromJsonString(doc->value("agent", ""), &a.reg)) {
        resp->set_reregister(true);
        return grpc::Status::OK;
      }
      a.registered = FromUnixMs(doc->value("registered_ms", int64_t{0}));
      a.last_heartbeat = system_clock::now();
      SaveAgent(a);
    } catch (const std::exception& e) {
      return {grpc::StatusCode::UNAVAILABLE, std::string("state store: ") + e.what()};
    }
    return grpc::Status::OK;
  }
  std::lock_guard lock(mu_);
  auto it = agents_.find(req->address());
  if (it == agents_.end()) {
    resp->set_reregister(true);
    return grpc::Status::OK;
  }
  it->second.last_heartbeat = system_clock::now();
  return grpc::Status::OK;
}

grpc::Status ControllerService::ListAgents(grpc::ServerContext*, const v1::ListAgentsRequest*,
                                           v1::ListAgentsResponse* resp) {
  std::map<std::string, AgentEntry> agents;
  try {
    std::lock_guard lock(mu_);
    agents = AgentsLocked();
  } catch (const std::exception& e) {
    return {grpc::StatusCode::UNAVAILABLE, std::string("state store: ") + e.what()};
  }
  auto now = system_clock::now();
  for (const auto& [addr, a] : agents) {
    auto* r = resp->add_agents();
    *r->mutable_agent() = a.reg;
    *r->mutable_registered_at() = Ts(a.registered);
    *r->mutable_last_heartbeat() = Ts(a.last_heartbeat);
    r->set_alive(now - a.last_heartbeat <= 3 * opt_.heartbeat_interval);
  }
  return grpc::Status::OK;
}

grpc::Status ControllerService::SubmitExperiment(grpc::ServerContext*,
                                                 const v1::SubmitExperimentRequest* req,
                                                 v1::SubmitExperimentResponse* resp) {
  experiments::LoadOptions lo;
  lo.validate_cron = ValidateCron;
  auto loaded = experiments::LoadString(
      req->yaml(), req->file_name().empty() ? "<submitted>" : req->file_name(), lo);
  if (!loaded.ok()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, experiments::FormatDiagnostics(loaded.errors)};
  }
  for (const auto& n : loaded.notes) resp->add_notes(n.ToString());
  std::lock_guard lock(mu_);
  if (stopping_ || role_ != Role::kActive) return NotActiveLocked();
  try {
    for (const auto& e : loaded.experiments) {
      // Each experiment is stored before memory changes, so a refused write leaves this one
      // (and the ones after it) as they were.
      store_.Put("experiments", e.name(), {{"experiment", ToJsonString(e)}});
      view_.experiments[e.name()] = e;
      resp->add_experiment_names(e.name());
      if (!e.schedule().cron().empty()) {
        auto cron = CronSchedule::Parse(e.schedule().cron());
        ScheduleEntry next;
        next.scheduler =
            std::make_unique<Scheduler>(e.name(), *cron, SchedulePolicy::FromProto(e.schedule()));
        auto old = view_.schedules.find(e.name());
        if (old != view_.schedules.end()) {
          // Resubmitting keeps the schedule's history and pause state; only the rules change.
          next.state = old->second.state;
        } else {
          next.state.created = NowSeconds();
          next.state.suspended = e.schedule().suspend();
        }
        PersistSchedule(e.name(), next.state);
        view_.schedules[e.name()] = std::move(next);
      } else if (view_.schedules.count(e.name())) {
        store_.Remove("schedules", e.name());
        view_.schedules.erase(e.name());
      }
      if (req->run_now()) resp->add_run_ids(StartRunLocked(e, "cli", ""));
    }
  } catch (const std::exception& e) {
    wake_.notify_all();
    return StoreFailure(e);
  }
  wake_.notify_all();
  return grpc::Status::OK;
}

grpc::Status ControllerService::ListExperiments(grpc::ServerContext*,
                                                const v1::ListExperimentsRequest*,
                                                v1::ListExperimentsResponse* resp) {
  return Read([&](const View& v) {
    for (const auto& [n, e] : v.experiments) *resp->add_experiments() = e;
    return grpc::Status::OK;
  });
}

v1::ScheduleState ControllerService::ScheduleStateProto(const View& view, const std::string& name) {
  const auto& se = view.schedules.at(name);
  v1::ScheduleState s;
  s.set_experiment_name(name);
  s.set_cron(view.experiments.at(name).schedule().cron());
  s.set_paused(se.state.suspended);
  if (se.state.last_scheduled) *s.mutable_last_scheduled() = Ts(*se.state.last_scheduled);
  if (auto w = se.scheduler->NextWake(se.state)) *s.mutable_next_run() = Ts(*w);
  for (const auto& r : se.state.active) {
    for (const auto& [id, e] : view.runs) {
      if (e->schedule_run_id == r.id) s.add_active_run_ids(id);
    }
  }
  s.set_missed(uint32_t(se.state.missed_total));
  s.set_skipped(uint32_t(se.state.skipped_total));
  return s;
}

grpc::Status ControllerService::ListSchedules(grpc::ServerContext*, const v1::ListSchedulesRequest*,
                                              v1::ListSchedulesResponse* resp) {
  return Read([&](const View& v) {
    for (const auto& [n, se] : v.schedules) *resp->add_schedules() = ScheduleStateProto(v, n);
    return grpc::Status::OK;
  });
}

grpc::Status ControllerService::ChangeSchedule(
    const std::string& name, const std::function<void(Scheduler&, ScheduleState&)>& change,
    v1::ScheduleState* resp) {
  std::lock_guard lock(mu_);
  if (stopping_ || role_ != Role::kActive) return NotActiveLocked();
  auto it = view_.schedules.find(name);
  if (it == view_.schedules.end()) {
    return {grpc::StatusCode::NOT_FOUND, "no schedule \"" + name + "\""};
  }
  ScheduleState next = it->second.state;
  change(*it->second.scheduler, next);
  try {
    PersistSchedule(it->first, next);
  } catch (const std::exception& e) {
    return StoreFailure(e);
  }
  it->second.state = std::move(next);
  *resp = ScheduleStateProto(view_, it->first);
  wake_.notify_all();
  return grpc::Status::OK;
}

grpc::Status ControllerService::PauseSchedule(grpc::ServerContext*, const v1::ScheduleRef* req,
                                              v1::ScheduleState* resp) {
  return ChangeSchedule(
      req->experiment_name(), [](Scheduler& s, ScheduleState& st) { s.Suspend(st); }, resp);
}

grpc::Status ControllerService::ResumeSchedule(grpc::ServerContext*, const v1::ScheduleRef* req,
                                               v1::ScheduleState* resp) {
  return ChangeSchedule(
      req->experiment_name(), [](Scheduler& s, ScheduleState& st) { s.Resume(NowSeconds(), st); },
      resp);
}

grpc::Status ControllerService::ListRuns(grpc::ServerContext*, const v1::ListRunsRequest* req,
                                         v1::ListRunsResponse* resp) {
  return Read([&](const View& v) {
    for (const auto& [id, e] : v.runs) {
      if (!req->experiment_name().empty() && e->run.experiment_name() != req->experiment_name()) {
        continue;
      }
      v1::Run r = e->run;
      r.clear_report_json();  // lists stay small; GetRun has the report
      *resp->add_runs() = r;
    }
    return grpc::Status::OK;
  });
}

grpc::Status ControllerService::GetRun(grpc::ServerContext*, const v1::GetRunRequest* req,
                                       v1::Run* resp) {
  return Read([&](const View& v) -> grpc::Status {
    auto it = v.runs.find(req->id());
    if (it == v.runs.end()) return {grpc::StatusCode::NOT_FOUND, "no run \"" + req->id() + "\""};
    *resp = it->second->run;
    if (resp->state() == v1::Run::RUNNING) {
      // Live progress: the events so far, in the report's shape.
      resp->set_report_json(nlohmann::json{{"events", it->second->live_events}}.dump());
    }
    return grpc::Status::OK;
  });
}

grpc::Status ControllerService::CancelRun(grpc::ServerContext*, const v1::CancelRunRequest* req,
                                          v1::Run* resp) {
  std::lock_guard lock(mu_);
  if (stopping_ || role_ != Role::kActive) return NotActiveLocked();
  auto it = view_.runs.find(req->id());
  if (it == view_.runs.end()) return {grpc::StatusCode::NOT_FOUND, "no run \"" + req->id() + "\""};
  it->second->cancel = true;
  *resp = it->second->run;
  return grpc::Status::OK;
}

grpc::Status ControllerService::GetStatus(grpc::ServerContext*, const v1::GetStatusRequest*,
                                          v1::ControllerStatus* resp) {
  auto fill = [](const ReplicaInfo& r, v1::ControllerReplica* out) {
    out->set_id(r.id);
    out->set_address(r.address);
  };
  fill(leadership_.self(), resp->mutable_self());
  if (auto a = leadership_.Active()) fill(*a, resp->mutable_active());
  for (const auto& r : leadership_.Replicas()) fill(r, resp->add_replicas());
  resp->set_state_store(store_.Describe());
  resp->set_last_step_down(leadership_.lost_reason());
  std::lock_guard lock(mu_);
  resp->set_role(role_ == Role::kActive     ? "active"
                 : role_ == Role::kStarting ? "starting"
                                            : "standby");
  return grpc::Status::OK;
}

ControllerMetrics ControllerService::Metrics() {
  std::lock_guard lock(mu_);
  ControllerMetrics m;
  m.active = role_ == Role::kActive;
  for (const auto& [id, e] : view_.runs) ++m.runs[e->run.state()];
  for (const auto& [name, se] : view_.schedules) {
    ControllerMetrics::Schedule s;
    s.name = name;
    s.paused = se.state.suspended;
    s.active_runs = int64_t(se.state.active.size());
    s.skipped = se.state.skipped_total;
    s.missed = se.state.missed_total;
    if (auto w = se.scheduler->NextWake(se.state)) s.next_run_unix = w->time_since_epoch().count();
    m.schedules.push_back(s);
  }
  auto now = system_clock::now();
  std::map<std::string, AgentEntry> agents;
  try {
    agents = AgentsLocked();
  } catch (const std::exception&) {  // the store is unreachable: no agents known right now
  }
  m.agents_registered = int64_t(agents.size());
  for (const auto& [addr, a] : agents) {
    m.agents_alive += now - a.last_heartbeat <= 3 * opt_.heartbeat_interval;
  }
  m.agents_static = int64_t(opt_.static_agents.size());
  return m;
}

}  // namespace faultline::controller
