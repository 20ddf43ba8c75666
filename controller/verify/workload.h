#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller/verify/client.h"
#include "controller/verify/history.h"

namespace faultline::verify {

// Issue 13's traffic kinds (the experiment's Workload message maps onto these; see
// experiments/README.md for what each does).
struct WatcherOptions {
  enum class Start { kCurrent, kPast, kCompacted, kFuture };
  Start start = Start::kCurrent;
  int64_t offset = 10;  // past/future: revisions back or ahead
  bool prev_kv = false;
  bool progress_notify = false;
  std::chrono::milliseconds request_progress{0};  // 0: never
  // 0: open once (compacted: once at each compaction). Else closed and opened again this often
  // (compacted: at the newest compaction revision, the same one again if none is newer).
  std::chrono::milliseconds reopen{0};
  // While the traffic runs, wait this long after each response before reading the next (a
  // consumer slower than the stream); 0: never.
  std::chrono::milliseconds read_delay{0};
};
const char* ToString(WatcherOptions::Start s);

// When a recurring action runs: every `every` (first after `after`, default `every`) and at
// each of `at` (offsets from the workload's start).
struct Moments {
  std::chrono::milliseconds every{0}, after{-1};
  std::vector<std::chrono::milliseconds> at;
  bool enabled() const { return every.count() > 0 || !at.empty(); }
};

struct CompactionOptions {
  enum class At { kLatest, kBehind, kDelete };
  Moments when;
  At at = At::kLatest;
  int64_t behind = 0;
  bool physical = false;
};

struct DefragmentOptions {
  Moments when;
  bool all = false;  // every member each time; else one, in turn
};

struct LeaseOptions {
  int clients = 0;
  std::chrono::milliseconds ttl{10000};
  int keys = 2;
  int keep_alives = 2;
  // Not revoked: left to expire after the keep-alives, its keys read until they are gone.
  bool expire = false;
};

struct KubernetesOptions {
  int clients = 0;
  int objects = 10;
  std::string resource = "pods";
};

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
  // With linearizable reads: this share (0..100) of gets is served serializable instead.
  int serializable_read_percent = 0;
  std::chrono::milliseconds op_timeout{1000};
  uint64_t seed = 1;
  bool watch = true;       // watchers per `watchers` (none listed: one from the start per member)
  bool final_read = true;  // read every key linearizably at the end
  // Traffic kinds (issue 13). Watchers are opened on every member, one per entry.
  std::vector<WatcherOptions> watchers;
  CompactionOptions compaction;
  DefragmentOptions defragment;
  int past_read_percent = 0;  // of cas txns, 0..100
  int64_t past_read_behind = 1;
  LeaseOptions leases;
  KubernetesOptions kubernetes;
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
  // How each watch stream still open stood at the end of Stop: the last change under its prefix
  // (what it owed), the highest event and the highest revision (event or progress) it got, and
  // whether it was asked for progress (only one that had caught up is). For a test or a report
  // that sees no progress notification and must say why.
  struct StreamAtEnd {
    std::string prefix;
    int64_t owed = 0, event_reached = 0, reached = 0;
    bool asked = false;
  };
  const std::vector<StreamAtEnd>& streams_at_end() const { return streams_at_end_; }
  const std::string& prefix() const { return options_.prefix; }
  int64_t ops_done() const { return ops_done_.load(); }

 private:
  struct Stream;
  // Recorded by the traffic threads, merged into the history by Stop.
  struct Log {
    std::mutex mu;
    std::vector<Op> ops;
    std::vector<WatchEvent> events;
    std::vector<WatchProgress> progress;
    std::vector<WatchOpen> opens;
    std::vector<AdminOp> admin;
    std::vector<ListOp> lists;
  };
  enum class WatchEnd { kStopped, kDeadline, kCompacted };

  void RunClient(int c);
  void RunWatchers(size_t member, size_t entry);
  // One logical watch (one watcher name) on `prefix` from `start`, resumed after breaks, until
  // the deadline, Stop, the start being compacted away, or (compact >= 0) a compaction newer
  // than `compact`.
  WatchEnd RunWatch(size_t member, const std::string& name, const std::string& why, int64_t start,
                    const std::string& prefix, const WatcherOptions& w,
                    std::chrono::steady_clock::time_point deadline, int64_t compact);
  void RunProgressTicker();
  void RunAdmin();
  void Compact(int64_t seq);
  void Defragment(int64_t seq);
  void RunLeases(int c);
  void RunKubernetes(int c);
  void RunKubernetesWatch(int c);
  int CompactorId() const;
  int LeaseClientId(int c) const;
  int KubernetesClientId(int c) const;
  // One recorded op each (not yet stored: Record or the client's own list).
  Op NewOp(int client, size_t member, OpType type, const std::string& key);
  void Finish(Op& op, const grpc::Status& st);
  Op DoPut(int client, size_t member, const std::string& key, const std::string& value,
           int64_t lease = 0);
  Op DoGet(int client, size_t member, const std::string& key, bool serializable, int64_t lease = 0);
  Op DoDelete(int client, size_t member, const std::string& key);
  ListOp DoList(int client, size_t member, const std::string& prefix);
  void Record(Op op);
  // The store's current revision as one member sees it (0: it did not answer).
  int64_t CurrentRevision(size_t member);
  // Sleeps until t or until `flag` is set; false when it is set.
  bool SleepUntil(std::chrono::steady_clock::time_point t, const std::atomic<bool>& flag);
  int64_t Now() const;

  WorkloadOptions options_;
  std::unique_ptr<EtcdClient> client_;
  std::chrono::steady_clock::time_point t0_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> stop_watch_{false};
  std::atomic<int64_t> ops_done_{0};
  std::atomic<int64_t> next_id_{0};
  std::atomic<int64_t> last_compact_{0};  // newest revision a compaction succeeded at
  int64_t start_revision_ = 0;
  std::string k8s_prefix_;
  std::vector<std::atomic<int64_t>> k8s_list_rev_;
  std::vector<std::thread> threads_, watchers_;
  std::vector<std::vector<Op>> per_client_;
  Log log_;
  std::vector<StreamAtEnd> streams_at_end_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::mutex streams_mu_;
  std::vector<std::shared_ptr<Stream>> streams_;  // open watch streams
  History history_;
  bool started_ = false, stopped_ = false;
};

}  // namespace faultline::verify
