#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller/runner/runner.h"
#include "controller/schedule/scheduler.h"
#include "controller/state/leadership.h"
#include "controller/state/store.h"
#include "faultline/v1/controller.grpc.pb.h"

namespace faultline::controller {

struct ControllerOptions {
  std::vector<std::string> etcd_endpoints;
  verify::ClientOptions etcd_client;  // TLS to the cluster under test
  // Agents known without registration (addresses); registered agents are added to them.
  std::vector<std::string> static_agents;
  std::chrono::milliseconds lease{15000};
  std::chrono::seconds heartbeat_interval{5};
  AgentConnector connect = ConnectInsecure;
  // Run reports (json, junit, html) are written under it by run id; empty: only in the store.
  std::filesystem::path reports_dir;
};

// What the controller's /metrics page reports, taken at one instant. Runs and schedules are
// the active replica's; a standby reports none.
struct ControllerMetrics {
  bool active = false;  // this replica runs the schedules (always, with the embedded store)
  std::map<v1::Run::State, int64_t> runs;  // known runs (kept in the store) by state
  struct Schedule {
    std::string name;
    bool paused = false;
    int64_t active_runs = 0;
    uint64_t skipped = 0, missed = 0;
    int64_t next_run_unix = 0;  // 0: none (paused)
  };
  std::vector<Schedule> schedules;
  int64_t agents_registered = 0, agents_alive = 0, agents_static = 0;
};

// Store id of an agent registration ("agents/<id>"): its address, '%', '/' and a leading '.'
// percent-encoded.
std::string AgentStoreId(const std::string& address);

// The controller: agent registry, experiments and their schedules, runs. State lives in a
// StateStore so a restart, or another replica taking over, resumes schedules, marks interrupted
// runs and recovers their faults. Only the active replica (Leadership) schedules and runs; a
// standby serves reads from the store and answers changes with FAILED_PRECONDITION naming the
// active replica's address.
class ControllerService final : public v1::Controller::Service {
 public:
  ControllerService(StateStore& store, Leadership& leadership, ControllerOptions options);
  ~ControllerService() override;

  // Starts campaigning. Once active: loads the state, recovers what the previous active replica
  // (or process) left running, and schedules; on losing the election it steps down (runs
  // cancelled, their faults recovered) and campaigns again.
  void Start();
  // Cancels every run (each recovers its faults) and waits for them, records how they ended,
  // stops the scheduler, then resigns so a standby takes over at once.
  void Stop();

  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest*,
                        v1::RegisterResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest*,
                         v1::HeartbeatResponse*) override;
  grpc::Status ListAgents(grpc::ServerContext*, const v1::ListAgentsRequest*,
                          v1::ListAgentsResponse*) override;
  grpc::Status SubmitExperiment(grpc::ServerContext*, const v1::SubmitExperimentRequest*,
                                v1::SubmitExperimentResponse*) override;
  grpc::Status ListExperiments(grpc::ServerContext*, const v1::ListExperimentsRequest*,
                               v1::ListExperimentsResponse*) override;
  grpc::Status ListSchedules(grpc::ServerContext*, const v1::ListSchedulesRequest*,
                             v1::ListSchedulesResponse*) override;
  grpc::Status PauseSchedule(grpc::ServerContext*, const v1::ScheduleRef*,
                             v1::ScheduleState*) override;
  grpc::Status ResumeSchedule(grpc::ServerContext*, const v1::ScheduleRef*,
                              v1::ScheduleState*) override;
  grpc::Status ListRuns(grpc::ServerContext*, const v1::ListRunsRequest*,
                        v1::ListRunsResponse*) override;
  grpc::Status GetRun(grpc::ServerContext*, const v1::GetRunRequest*, v1::Run*) override;
  grpc::Status CancelRun(grpc::ServerContext*, const v1::CancelRunRequest*, v1::Run*) override;
  grpc::Status GetStatus(grpc::ServerContext*, const v1::GetStatusRequest*,
                         v1::ControllerStatus*) override;

  ControllerMetrics Metrics();

 private:
  struct AgentEntry {
    v1::AgentRegistration reg;
    std::chrono::system_clock::time_point registered, last_heartbeat;
  };
  struct ScheduleEntry {
    std::unique_ptr<Scheduler> scheduler;
    ScheduleState state;
  };
  struct RunEntry {
    v1::Run run;
    nlohmann::json live_events = nlohmann::json::array();
    std::atomic<bool> cancel{false};
    std::thread thread;
    std::string schedule_run_id;         // the scheduler's record id, when the schedule started it
    std::string started_by;              // the replica that started it
    std::optional<LeadershipTerm> term;  // the election term it runs in (none: no election)
    // The agents it may call, exactly those its lease record names: a takeover's recovery sends
    // the new term to each of them, which is what fences this run if its replica is deposed.
    std::vector<std::string> agents;
  };
  // Experiments, schedules and runs: the active replica's working set, or what a standby reads
  // from the store to answer.
  struct View {
    std::map<std::string, v1::Experiment> experiments;
    std::map<std::string, ScheduleEntry> schedules;
    std::map<std::string, std::unique_ptr<RunEntry>> runs;
  };
  enum class Role { kStandby, kStarting, kActive };

  View Load(bool log) const;
  void RoleLoop(bool active);
  bool BecomeActive();
  void StepDown(const std::string& why);
  // Returns the runs whose lease record names an agent that could not be reached: their records
  // stay in the store, and RefenceLoop goes on calling those agents.
  struct Unfenced {
    std::string run_id;
    std::vector<std::string> agents;  // not reached yet
    std::chrono::steady_clock::time_point give_up;
  };
  std::vector<Unfenced> RecoverInterrupted();
  // Recovers run `id` on one agent with this term's fence ("" on success, else why not).
  std::string RecoverOn(const std::string& addr, const std::string& id,
                        const std::optional<LeadershipTerm>& term, std::chrono::seconds deadline);
  // While active: calls each unreached agent again until it answers (which fences the deposed
  // replica off it and ends the run's faults there) or the run's lease is long over; then the
  // run's lease record goes.
  void RefenceLoop(std::vector<Unfenced> pending);
  // Answers a read from the active replica's memory, or from the store on a standby.
  template <typename F>
  grpc::Status Read(F&& answer);
  // The error for a change asked of a replica that is not active (mu_ held).
  grpc::Status NotActiveLocked() const;
  // Pause/resume: applies `change` to a copy of the schedule's state, stores it, then adopts it
  // and answers with the schedule (the active replica only).
  grpc::Status ChangeSchedule(const std::string& name,
                              const std::function<void(Scheduler&, ScheduleState&)>& change,
                              v1::ScheduleState* resp);

  std::string StartRunLocked(const v1::Experiment& exp, const std::string& trigger,
                             const std::string& schedule_run_id);
  void ExecuteRun(RunEntry* entry, v1::Experiment exp);
  void SchedulerLoop();
  void PersistRun(const RunEntry& entry);
  void PersistSchedule(const std::string& name, const ScheduleState& state);
  static v1::ScheduleState ScheduleStateProto(const View& view, const std::string& name);
  // Static agents and registered ones with a heartbeat in the last three intervals (mu_ held).
  std::vector<std::string> AgentAddresses();
  // Registrations: the store's when replicas share it (an agent that registered with any replica
  // is known to all at once, and a takeover keeps the fleet), this process's memory otherwise.
  // mu_ held; throws std::runtime_error when the shared store cannot be read.
  std::map<std::string, AgentEntry> AgentsLocked() const;
  void SaveAgent(const AgentEntry& a);

  StateStore& store_;
  Leadership& leadership_;
  ControllerOptions opt_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool scheduling_ = false;
  Role role_ = Role::kStandby;
  std::map<std::string, AgentEntry> agents_;  // registrations when the store is not shared
  View view_;                                 // while active
  std::thread role_thread_;
  std::thread scheduler_thread_;
  std::thread refence_thread_;
};

}  // namespace faultline::controller
