#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "controller/runner/run_result.h"
#include "controller/verify/client.h"
#include "controller/verify/history.h"
#include "faultline/v1/experiment.pb.h"

namespace faultline::controller {

// The run's workload: controller/verify's gRPC workload records every operation (and watch
// event), and its checkers judge the history (lost writes, linearizability, watch order).
// Latency per second and during faults come from the same history, so the report and the SLOs
// describe the load that was checked.
class HistoryLoad {
 public:
  // `start_s`: when, in run seconds, Start is called (history times are relative to it).
  // `watch`: also record watch events (what WATCH_ORDER judges; costs a stream per member).
  HistoryLoad(const v1::Workload& spec, std::vector<std::string> endpoints, uint64_t seed,
              std::string prefix, bool watch = true, verify::ClientOptions client = {});
  ~HistoryLoad();
  void Start(double start_s);
  void Stop();
  std::vector<LatencySecond> PerSecond() const;
  std::vector<double> LatenciesBetween(double from, double to) const;
  // LINEARIZABILITY, WATCH_ORDER, LOST_WRITES, LEASES, PAST_READS (one result each) or WATCH
  // (one per guarantee, named WATCH/<guarantee>) on the recorded history.
  std::vector<CheckOutcome> Check(const std::string& name) const;
  const verify::History& history() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace faultline::controller
