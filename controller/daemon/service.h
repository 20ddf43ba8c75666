#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller/daemon/store.h"
#include "controller/runner/runner.h"
#include "controller/schedule/scheduler.h"
#include "faultline/v1/controller.grpc.pb.h"

namespace faultline::controller {

struct ControllerOptions {
  std::vector<std::string> etcd_endpoints;
  // Agents known without registration (addresses); registered agents are added to them.
  std::vector<std::string> static_agents;
  std::chrono::milliseconds lease{15000};
  std::chrono::seconds heartbeat_interval{5};
  AgentConnector connect = ConnectInsecure;
};

// What the controller's /metrics page reports, taken at one instant.
struct ControllerMetrics {
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

// The controller: agent registry, experiments and their schedules, runs. State lives in a
// StateStore so a restart resumes schedules, marks interrupted runs and recovers their faults.
class ControllerService final : public v1::Controller::Service {
 public:
  ControllerService(StateStore& store, ControllerOptions options);
  ~ControllerService() override;

  // Recovers what a previous process left running, then starts the scheduler loop.
  void Start();
  // Cancels every run (each recovers its faults) and waits for them; stops the scheduler.
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
    std::string schedule_run_id;  // the scheduler's record id, when the schedule started it
  };

  std::string StartRunLocked(const v1::Experiment& exp, const std::string& trigger,
                             const std::string& schedule_run_id);
  void ExecuteRun(RunEntry* entry, v1::Experiment exp);
  void SchedulerLoop();
  void PersistRun(const v1::Run& run);
  void PersistSchedule(const std::string& name);
  v1::ScheduleState ScheduleStateProto(const std::string& name);
  std::vector<std::string> AgentAddresses();
  void RecoverInterrupted();

  StateStore& store_;
  ControllerOptions opt_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::string, AgentEntry> agents_;
  std::map<std::string, v1::Experiment> experiments_;
  std::map<std::string, ScheduleEntry> schedules_;
  std::map<std::string, std::unique_ptr<RunEntry>> runs_;
  std::thread scheduler_thread_;
};

}  // namespace faultline::controller
