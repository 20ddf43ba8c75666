#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller/runner/run_result.h"
#include "faultline/v1/experiment.pb.h"

namespace faultline::controller {

// A concurrent etcd client load. Each client is pinned to one member (as a client configured
// with one endpoint would be, so a paused member shows in the latency it serves) and owns its
// own keys, which makes lost acknowledged writes decidable: the last acknowledged value of a
// key must be what a linearizable read returns at the end, unless a later write's outcome is
// unknown and it may have landed instead.
class Workload {
 public:
  Workload(const v1::Workload& spec, std::vector<std::string> endpoints, std::string key_prefix,
           std::chrono::steady_clock::time_point t0, uint64_t seed);
  ~Workload();

  void Start();
  void Stop();

  // Latency per second of the run (second 0 = t0).
  std::vector<LatencySecond> PerSecond() const;
  // Latencies (ms) of the operations invoked inside [from, to) seconds, successful ones only.
  std::vector<double> LatenciesBetween(double from, double to) const;
  // Lost-write verdict after Stop(): reads every key linearizably through `endpoints`.
  CheckOutcome CheckLostWrites() const;
  size_t ops() const;
  bool enabled() const { return enabled_; }

 private:
  struct Sample {
    double invoke_s;
    double ms;
    bool ok;
  };
  struct KeyState {
    std::string last_acked;
    std::vector<std::string> unknown_after;  // writes with no answer after last_acked
  };
  void Client(int index);

  v1::Workload spec_;
  std::vector<std::string> endpoints_;
  std::string prefix_;
  std::chrono::steady_clock::time_point t0_;
  uint64_t seed_;
  bool enabled_ = true;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::vector<Sample> samples_;
  std::map<std::string, KeyState> keys_;
};

}  // namespace faultline::controller
