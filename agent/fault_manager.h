#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "faultline/v1/agent.pb.h"
#include "faults/core/deadline_timer.h"
#include "faults/core/journal.h"
#include "faults/core/registry.h"

namespace faultline::agent {

// Totals for /metrics.
struct ManagerMetrics {
  std::atomic<int64_t> injections{0};
  std::atomic<int64_t> injection_failures{0};
  std::atomic<int64_t> reverts{0};
  std::atomic<int64_t> revert_failures{0};
  std::atomic<int64_t> lease_expiries{0};
  std::atomic<int64_t> startup_reverts{0};
};

// Owns every active fault of the agent: journals before each change, applies, keeps the
// deadline (min of duration end and lease), reverts on time, on recover, at shutdown, and at
// start for whatever a previous agent left in the journal.
class FaultManager {
 public:
  struct Options {
    std::chrono::nanoseconds default_lease = std::chrono::minutes(10);
    size_t ended_history = 256;  // ended faults kept for List(include_ended)
  };

  FaultManager(const faults::Registry& registry, faults::FaultContext ctx, faults::Journal& journal,
               Options options);
  ~FaultManager();

  // Reverts everything the journal lists as outstanding, then sweeps each family. Call once,
  // before serving. Returns one line per action taken.
  std::vector<std::string> Startup();

  // Throws faults::ValidationError (bad spec) or faults::FaultError (cannot be applied here).
  v1::FaultStatus Inject(const v1::InjectRequest& request);
  // Extends the lease of the named faults (or of every fault of an experiment). Unknown ids are
  // reported as not found (std::out_of_range).
  std::vector<v1::FaultStatus> Renew(const v1::RenewRequest& request);
  std::vector<v1::FaultStatus> Recover(const v1::RecoverRequest& request);
  std::vector<v1::FaultStatus> List(bool include_ended) const;
  // Reverts every active fault (agent shutdown).
  void Shutdown();

  size_t active() const;
  const ManagerMetrics& metrics() const { return metrics_; }
  // Per-fault counters for /metrics: fault id -> (kind, counters).
  std::vector<v1::FaultStatus> ActiveStatuses() const { return List(false); }

 private:
  struct Entry {
    std::unique_ptr<faults::Fault> fault;
    v1::FaultStatus status;
    std::optional<faults::DeadlineTimer::Clock::time_point> ends_at;
    faults::DeadlineTimer::Clock::time_point lease_until;
  };

  // Reverts one fault under mu_; records the outcome in the journal and history.
  v1::FaultStatus RevertLocked(const std::string& id, const std::string& reason);
  void OnDeadline(const std::string& id);
  void Reschedule(const std::string& id, Entry& e);
  std::string NewId();
  v1::FaultStatus Snapshot(const Entry& e) const { return Snapshot(*e.fault, e.status); }
  // `status` with the fault's current description and counters.
  static v1::FaultStatus Snapshot(const faults::Fault& fault, v1::FaultStatus status);
  // Keeps an ended fault for List(include_ended), bounded by options_.ended_history.
  void RememberEnded(const v1::FaultStatus& status);

  const faults::Registry& registry_;
  faults::FaultContext ctx_;
  faults::Journal& journal_;
  Options options_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> active_;
  std::deque<v1::FaultStatus> ended_;
  ManagerMetrics metrics_;
  uint64_t id_counter_ = 0;
  // Declared last: its thread calls OnDeadline, so it must stop before the rest is destroyed.
  std::unique_ptr<faults::DeadlineTimer> timer_;
};

}  // namespace faultline::agent
