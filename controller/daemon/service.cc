#include "controller/daemon/service.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <iostream>

#include "controller/runner/report.h"
#include "experiments/loader.h"
#include "faults/core/duration.h"

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

void Log(const std::string& msg) { std::cerr << "faultline-controller: " << msg << std::endl; }

std::string ValidateCron(const std::string& expr) {
  std::string why;
  return CronSchedule::Parse(expr, &why) ? "" : why;
}

}  // namespace

ControllerService::ControllerService(StateStore& store, ControllerOptions options)
    : store_(store), opt_(std::move(options)) {}

ControllerService::~ControllerService() { Stop(); }

void ControllerService::Start() {
  std::lock_guard lock(mu_);
  for (const auto& [name, doc] : store_.List("experiments")) {
    v1::Experiment e;
    if (!FromJsonString(doc.value("experiment", ""), &e)) {
      Log("store: experiment " + name + " does not parse; ignored");
      continue;
    }
    experiments_[e.name()] = e;
    if (!e.schedule().cron().empty()) {
      auto cron = CronSchedule::Parse(e.schedule().cron());
      if (!cron) continue;
      ScheduleEntry se;
      se.scheduler =
          std::make_unique<Scheduler>(e.name(), *cron, SchedulePolicy::FromProto(e.schedule()));
      if (auto st = store_.Get("schedules", e.name())) {
        try {
          se.state = ScheduleState::FromJson(*st);
        } catch (const std::exception& ex) {
          Log("store: schedule " + e.name() + ": " + ex.what() + "; starting it afresh");
          se.state.created = NowSeconds();
        }
      } else {
        se.state.created = NowSeconds();
      }
      schedules_[e.name()] = std::move(se);
    }
  }
  for (const auto& [id, doc] : store_.List("runs")) {
    auto entry = std::make_unique<RunEntry>();
    if (!FromJsonString(doc.value("run", ""), &entry->run)) continue;
    runs_[id] = std::move(entry);
  }
  RecoverInterrupted();
  scheduler_thread_ = std::thread([this] { SchedulerLoop(); });
}

// A run the previous process did not finish: its faults may still hold (their lease has not
// lapsed if the restart was quick), so recover them by run id on every agent it used, then mark
// it. The schedule's record of it is finished as failed.
void ControllerService::RecoverInterrupted() {
  for (const auto& [id, lease] : store_.List("leases")) {
    for (const auto& addr : lease.value("agents", std::vector<std::string>{})) {
      try {
        auto stub = opt_.connect(addr);
        v1::RecoverRequest req;
        req.set_experiment_id(id);
        v1::RecoverResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(system_clock::now() + std::chrono::seconds(5));
        auto st = stub->Recover(&ctx, req, &resp);
        Log("recovered run " + id + " on " + addr + ": " +
            (st.ok() ? std::to_string(resp.faults_size()) + " fault(s)"
                     : "unreachable (its lease ends the faults): " + st.error_message()));
      } catch (const std::exception& e) {
        Log("recover " + id + " on " + addr + ": " + e.what());
      }
    }
    store_.Remove("leases", id);
  }
  for (auto& [id, entry] : runs_) {
    if (entry->run.state() != v1::Run::RUNNING) continue;
    entry->run.set_state(v1::Run::INTERRUPTED);
    entry->run.set_summary("the controller stopped during the run; its faults were recovered");
    *entry->run.mutable_ended_at() = Ts(system_clock::now());
    PersistRun(entry->run);
    std::string sched_run =
        store_.Get("runs", id).value_or(nlohmann::json::object()).value("schedule_run_id", "");
    auto it = schedules_.find(entry->run.experiment_name());
    if (it != schedules_.end() && !sched_run.empty()) {
      it->second.scheduler->Finished(sched_run, NowSeconds(), false, it->second.state);
      PersistSchedule(it->first);
    }
    Log("run " + id + " marked interrupted");
  }
}

void ControllerService::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, e] : runs_) e->cancel = true;
  }
  wake_.notify_all();
  if (scheduler_thread_.joinable()) scheduler_thread_.join();
  // Each cancelled run recovers its own faults before its thread ends.
  std::vector<std::thread*> threads;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, e] : runs_) {
      if (e->thread.joinable()) threads.push_back(&e->thread);
    }
  }
  for (auto* t : threads) t->join();
}

void ControllerService::PersistRun(const v1::Run& run) {
  nlohmann::json doc{{"run", ToJsonString(run)}};
  auto it = runs_.find(run.id());
  if (it != runs_.end()) doc["schedule_run_id"] = it->second->schedule_run_id;
  store_.Put("runs", run.id(), doc);
}

void ControllerService::PersistSchedule(const std::string& name) {
  store_.Put("schedules", name, schedules_.at(name).state.ToJson());
}

std::vector<std::string> ControllerService::AgentAddresses() {
  std::vector<std::string> out = opt_.static_agents;
  auto now = system_clock::now();
  for (const auto& [addr, a] : agents_) {
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
  auto agents = AgentAddresses();
  // Written before any fault exists: after a crash the next controller knows where to recover.
  store_.Put("leases", id, {{"agents", agents}, {"lease_ms", opt_.lease.count()}});
  RunEntry* raw = entry.get();
  runs_[id] = std::move(entry);
  PersistRun(raw->run);
  raw->thread = std::thread([this, raw, exp] { ExecuteRun(raw, exp); });
  return id;
}

void ControllerService::ExecuteRun(RunEntry* entry, v1::Experiment exp) {
  RunOptions ro;
  ro.run_id = entry->run.id();
  ro.etcd_endpoints = opt_.etcd_endpoints;
  ro.lease = opt_.lease;
  ro.connect = opt_.connect;
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
    std::vector<std::string> agents;
    {
      std::lock_guard lock(mu_);
      agents = AgentAddresses();
    }
    ro.agents = DescribeAgents(agents, opt_.connect);
    result = RunExperiment(exp, ro);
  } catch (const std::exception& e) {
    result.run_id = entry->run.id();
    result.experiment = exp.name();
    result.state = "error";
    result.error = e.what();
  }
  std::lock_guard lock(mu_);
  v1::Run& run = entry->run;
  run.set_state(result.state == "passed"      ? v1::Run::PASSED
                : result.state == "failed"    ? v1::Run::FAILED
                : result.state == "cancelled" ? v1::Run::CANCELLED
                                              : v1::Run::ERROR);
  std::string summary = result.state;
  for (const auto* c : result.failing()) summary += "; " + c->name + ": " + c->summary;
  if (!result.error.empty()) summary += ": " + result.error;
  run.set_summary(summary);
  run.set_report_json(ToJson(result).dump());
  *run.mutable_ended_at() = Ts(system_clock::now());
  try {
    WriteReports(result, store_.dir() / "reports" / run.id());
    PersistRun(run);
    store_.Remove("leases", run.id());
  } catch (const std::exception& e) {
    Log("run " + run.id() + ": cannot store its result: " + e.what());
  }
  auto it = schedules_.find(exp.name());
  if (it != schedules_.end() && !entry->schedule_run_id.empty()) {
    it->second.scheduler->Finished(entry->schedule_run_id, NowSeconds(), result.passed(),
                                   it->second.state);
    PersistSchedule(it->first);
  }
  Log("run " + run.id() + " ended: " + summary);
  wake_.notify_all();
}

void ControllerService::SchedulerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto now = NowSeconds();
    std::optional<Seconds> next;
    for (auto& [name, se] : schedules_) {
      auto decisions = se.scheduler->Due(now, se.state);
      for (const auto& d : decisions) {
        if (d.kind == Decision::Kind::kStart) {
          std::string id = StartRunLocked(experiments_.at(name), "schedule", d.run.id);
          Log("schedule " + name + ": started run " + id);
        } else {
          Log("schedule " + name + ": " +
              (d.kind == Decision::Kind::kMissed ? "missed " : "skipped (Forbid) ") + d.run.id);
        }
      }
      if (!decisions.empty()) PersistSchedule(name);
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

grpc::Status ControllerService::Register(grpc::ServerContext*, const v1::RegisterRequest* req,
                                         v1::RegisterResponse* resp) {
  if (req->agent().address().empty()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "agent.address: required"};
  }
  std::lock_guard lock(mu_);
  auto& a = agents_[req->agent().address()];
  a.reg = req->agent();
  a.registered = a.last_heartbeat = system_clock::now();
  faults::ToProto(opt_.heartbeat_interval, resp->mutable_heartbeat_interval());
  return grpc::Status::OK;
}

grpc::Status ControllerService::Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* req,
                                          v1::HeartbeatResponse* resp) {
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
  std::lock_guard lock(mu_);
  auto now = system_clock::now();
  for (const auto& [addr, a] : agents_) {
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
  std::lock_guard lock(mu_);
  if (stopping_) return {grpc::StatusCode::UNAVAILABLE, "the controller is stopping"};
  for (const auto& e : loaded.experiments) {
    experiments_[e.name()] = e;
    store_.Put("experiments", e.name(), {{"experiment", ToJsonString(e)}});
    resp->add_experiment_names(e.name());
    if (!e.schedule().cron().empty()) {
      auto cron = CronSchedule::Parse(e.schedule().cron());
      auto& se = schedules_[e.name()];
      // Resubmitting keeps the schedule's history and pause state; only the rules change.
      bool fresh = !se.scheduler;
      se.scheduler =
          std::make_unique<Scheduler>(e.name(), *cron, SchedulePolicy::FromProto(e.schedule()));
      if (fresh) {
        se.state.created = NowSeconds();
        se.state.suspended = e.schedule().suspend();
      }
      PersistSchedule(e.name());
    } else if (schedules_.erase(e.name())) {
      store_.Remove("schedules", e.name());
    }
    if (req->run_now()) resp->add_run_ids(StartRunLocked(e, "cli", ""));
  }
  wake_.notify_all();
  return grpc::Status::OK;
}

grpc::Status ControllerService::ListExperiments(grpc::ServerContext*,
                                                const v1::ListExperimentsRequest*,
                                                v1::ListExperimentsResponse* resp) {
  std::lock_guard lock(mu_);
  for (const auto& [n, e] : experiments_) *resp->add_experiments() = e;
  return grpc::Status::OK;
}

v1::ScheduleState ControllerService::ScheduleStateProto(const std::string& name) {
  const auto& se = schedules_.at(name);
  v1::ScheduleState s;
  s.set_experiment_name(name);
  s.set_cron(experiments_.at(name).schedule().cron());
  s.set_paused(se.state.suspended);
  if (se.state.last_scheduled) *s.mutable_last_scheduled() = Ts(*se.state.last_scheduled);
  if (auto w = se.scheduler->NextWake(se.state)) *s.mutable_next_run() = Ts(*w);
  for (const auto& r : se.state.active) {
    for (const auto& [id, e] : runs_) {
      if (e->schedule_run_id == r.id) s.add_active_run_ids(id);
    }
  }
  s.set_missed(uint32_t(se.state.missed_total));
  s.set_skipped(uint32_t(se.state.skipped_total));
  return s;
}

grpc::Status ControllerService::ListSchedules(grpc::ServerContext*, const v1::ListSchedulesRequest*,
                                              v1::ListSchedulesResponse* resp) {
  std::lock_guard lock(mu_);
  for (const auto& [n, se] : schedules_) *resp->add_schedules() = ScheduleStateProto(n);
  return grpc::Status::OK;
}

grpc::Status ControllerService::PauseSchedule(grpc::ServerContext*, const v1::ScheduleRef* req,
                                              v1::ScheduleState* resp) {
  std::lock_guard lock(mu_);
  auto it = schedules_.find(req->experiment_name());
  if (it == schedules_.end()) {
    return {grpc::StatusCode::NOT_FOUND, "no schedule \"" + req->experiment_name() + "\""};
  }
  it->second.scheduler->Suspend(it->second.state);
  PersistSchedule(it->first);
  *resp = ScheduleStateProto(it->first);
  return grpc::Status::OK;
}

grpc::Status ControllerService::ResumeSchedule(grpc::ServerContext*, const v1::ScheduleRef* req,
                                               v1::ScheduleState* resp) {
  std::lock_guard lock(mu_);
  auto it = schedules_.find(req->experiment_name());
  if (it == schedules_.end()) {
    return {grpc::StatusCode::NOT_FOUND, "no schedule \"" + req->experiment_name() + "\""};
  }
  it->second.scheduler->Resume(NowSeconds(), it->second.state);
  PersistSchedule(it->first);
  *resp = ScheduleStateProto(it->first);
  wake_.notify_all();
  return grpc::Status::OK;
}

grpc::Status ControllerService::ListRuns(grpc::ServerContext*, const v1::ListRunsRequest* req,
                                         v1::ListRunsResponse* resp) {
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : runs_) {
    if (!req->experiment_name().empty() && e->run.experiment_name() != req->experiment_name()) {
      continue;
    }
    v1::Run r = e->run;
    r.clear_report_json();  // lists stay small; GetRun has the report
    *resp->add_runs() = r;
  }
  return grpc::Status::OK;
}

grpc::Status ControllerService::GetRun(grpc::ServerContext*, const v1::GetRunRequest* req,
                                       v1::Run* resp) {
  std::lock_guard lock(mu_);
  auto it = runs_.find(req->id());
  if (it == runs_.end()) return {grpc::StatusCode::NOT_FOUND, "no run \"" + req->id() + "\""};
  *resp = it->second->run;
  if (resp->state() == v1::Run::RUNNING) {
    // Live progress: the events so far, in the report's shape.
    resp->set_report_json(nlohmann::json{{"events", it->second->live_events}}.dump());
  }
  return grpc::Status::OK;
}

grpc::Status ControllerService::CancelRun(grpc::ServerContext*, const v1::CancelRunRequest* req,
                                          v1::Run* resp) {
  std::lock_guard lock(mu_);
  auto it = runs_.find(req->id());
  if (it == runs_.end()) return {grpc::StatusCode::NOT_FOUND, "no run \"" + req->id() + "\""};
  it->second->cancel = true;
  *resp = it->second->run;
  return grpc::Status::OK;
}

ControllerMetrics ControllerService::Metrics() {
  std::lock_guard lock(mu_);
  ControllerMetrics m;
  for (const auto& [id, e] : runs_) ++m.runs[e->run.state()];
  for (const auto& [name, se] : schedules_) {
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
  m.agents_registered = int64_t(agents_.size());
  for (const auto& [addr, a] : agents_) {
    m.agents_alive += now - a.last_heartbeat <= 3 * opt_.heartbeat_interval;
  }
  m.agents_static = int64_t(opt_.static_agents.size());
  return m;
}

}  // namespace faultline::controller
