#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "faultline/v1/controller.pb.h"

namespace faultline::controller {

// One thing that happened during a run, at `t` seconds after it started.
struct TimelineEvent {
  double t = 0;
  // "run.start", "run.end", "step.start", "step.end", "fault.applied", "fault.reverted",
  // "leader.change", "error", "info".
  std::string kind;
  std::string step;
  std::string agent;   // address
  std::string member;  // etcd member the agent acts for, if any
  std::string fault_id;
  std::string message;
};

// When a fault was active on one agent.
struct FaultWindow {
  std::string step;
  std::string agent;
  std::string member;
  std::string fault_id;
  std::string kind;  // "process/pause", ...
  double start = 0;
  double end = -1;  // -1: still active when the run ended
  // The fault's counters as the agent reported them when it was reverted.
  std::map<std::string, int64_t> counters;
  // Delay faults: how late their releases were ("" for other faults), so a report shows when
  // the injected delay was not the configured one.
  std::string accuracy;
};

// Workload latency for one second of the run.
struct LatencySecond {
  int second = 0;
  int ops = 0;
  int errors = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

// Who each member considered leader at `t` ("" no leader, "?" unreachable).
struct LeaderSample {
  double t = 0;
  std::map<std::string, std::string> leader_by_member;
};

// A check (or an SLO) and its verdict, with the numbers that prove it.
struct CheckOutcome {
  std::string name;
  bool slo = false;
  bool passed = false;
  std::string summary;
  nlohmann::json evidence = nlohmann::json::object();
};

struct RunResult {
  std::string run_id;
  std::string experiment;
  std::string source;
  uint64_t seed = 0;
  // PASSED, FAILED (a check or SLO failed), ERROR or CANCELLED: the controller API's run states,
  // so a run reads the same from the embedded runner, the controller and report.json.
  v1::Run::State state = v1::Run::ERROR;
  std::string error;
  double started_at_unix = 0;
  double duration_s = 0;
  std::vector<std::string> members;
  std::vector<TimelineEvent> events;
  std::vector<FaultWindow> windows;
  std::vector<LatencySecond> latency;
  std::vector<LeaderSample> leaders;
  std::vector<CheckOutcome> checks;

  bool passed() const { return state == v1::Run::PASSED; }
  std::vector<const CheckOutcome*> failing() const;
};

// A run state as report.json and the CLI spell it: "passed", "failed", "error", "cancelled", ...
std::string StateName(v1::Run::State s);
// The inverse; a name it does not know is ERROR.
v1::Run::State StateFromName(const std::string& name);

nlohmann::json ToJson(const RunResult& r);
RunResult RunResultFromJson(const nlohmann::json& j);

}  // namespace faultline::controller
