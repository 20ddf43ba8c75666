#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller/verify/client.h"
#include "controller/verify/history.h"

namespace faultline::verify {

struct WorkloadOptions {
  std::vector<std::string> endpoints;
  ClientOptions client;
  int clients = 4;
  // Pinned: client i always talks to endpoint i % n. Spread: each op goes to the next endpoint.
  bool pinned = true;
  int keys = 10;
  // Keys are prefix + "k<i>"; the prefix must hold no keys when the workload starts (the model
  // assumes every key starts absent). Empty: "/faultline/workload/<seed>-<time>/".
  std::string prefix;
  double rate = 200;  // ops per second across all clients; 0 = as fast as they go
  // Written values are padded to at least this many bytes (they stay unique).
  size_t value_size = 0;
  // Op mix, relative weights.
  int put_weight = 40, get_weight = 40, cas_weight = 10, delete_weight = 10;
  bool linearizable_reads = true;  // false: gets are serializable
  std::chrono::milliseconds op_timeout{1000};
  uint64_t seed = 1;
  bool watch = true;       // one watcher per endpoint on the prefix
  bool final_read = true;  // read every key linearizably at the end
};

// Per second of the run (by return time): throughput, outcomes and latency quantiles.
struct SecondStats {
  int64_t second = 0;
  int64_t ops = 0, ok = 0, failed = 0, unknown = 0;
  int64_t p50_us = 0, p99_us = 0, max_us = 0;
};
std::vector<SecondStats> LatencyPerSecond(const History& h);

// N clients doing puts, gets, compare-and-sets and deletes on a bounded key set with unique
// values, at a rate limit, recording every op with invoke/return times and outcome. Random
// choices come from the seed; timing (and so the interleaving) of course does not.
class Workload {
 public:
  // Throws std::invalid_argument naming a bad option.
  explicit Workload(WorkloadOptions options);
  ~Workload();
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  void Start();
  // Stops the clients, reads the final state, lets watchers catch up, stops them. Idempotent.
  void Stop();
  // The recorded history (call after Stop).
  const History& history() const { return history_; }
  const std::string& prefix() const { return options_.prefix; }
  int64_t ops_done() const { return ops_done_.load(); }

 private:
  void RunClient(int c);
  void RunWatcher(size_t member);
  int64_t Now() const;

  WorkloadOptions options_;
  std::unique_ptr<EtcdClient> client_;
  std::chrono::steady_clock::time_point t0_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> stop_watch_{false};
  std::atomic<int64_t> ops_done_{0};
  std::atomic<int64_t> next_id_{0};
  int64_t start_revision_ = 0;
  std::vector<std::thread> threads_, watchers_;
  std::vector<std::vector<Op>> per_client_;
  std::vector<std::vector<WatchEvent>> per_watcher_;
  std::vector<std::atomic<int64_t>> watcher_last_rev_;
  std::mutex watch_mu_;
  std::vector<std::shared_ptr<grpc::ClientContext>> watch_ctx_;
  History history_;
  bool started_ = false, stopped_ = false;
};

}  // namespace faultline::verify
