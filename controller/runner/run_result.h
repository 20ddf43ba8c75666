#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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
  // "passed", "failed" (a check or SLO failed), "error", "cancelled".
  std::string state = "error";
  std::string error;
  double started_at_unix = 0;
  double duration_s = 0;
  std::vector<std::string> members;
  std::vector<TimelineEvent> events;
  std::vector<FaultWindow> windows;
  std::vector<LatencySecond> latency;
  std::vector<LeaderSample> leaders;
  std::vector<CheckOutcome> checks;

  bool passed() const { return state == "passed"; }
  std::vector<const CheckOutcome*> failing() const;
};

nlohmann::json ToJson(const RunResult& r);
RunResult RunResultFromJson(const nlohmann::json& j);

}  // namespace faultline::controller
