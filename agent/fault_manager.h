#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
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
//
// A fault's Apply and Revert run outside the manager's lock: a process restart waits for
// readiness (up to a minute) inside Apply, and other faults' renewals, deadlines and recovers
// must not wait for it. While one thread applies or reverts a fault, nobody else calls that
// fault's methods; a Recover (or Shutdown) of a fault still applying marks it and waits, and the
// applying thread reverts it the moment Apply returns. Deadline reverts run on their own threads
// so one slow revert does not hold back the timer.
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
    // Who may call the fault's methods: kApplying and kReverting belong to the thread doing it
    // (outside mu_); only in kActive may others (Observe for List, a revert) use it.
    enum class Phase { kApplying, kActive, kReverting };
    std::shared_ptr<faults::Fault> fault;
    v1::FaultStatus status;
    std::optional<faults::DeadlineTimer::Clock::time_point> ends_at;
    faults::DeadlineTimer::Clock::time_point lease_until;
    Phase phase = Phase::kApplying;
    // Set when a Recover or Shutdown asked to end the fault while Apply was running: the
    // applying thread reverts it with this reason as soon as Apply returns.
    std::string revert_when_applied;
  };
  using Lock = std::unique_lock<std::mutex>;

  // Reverts one fault (holding `lock` on mu_, which it releases while Revert runs). A fault
  // being applied is reverted once Apply returns; one another thread reverts is waited for.
  // Records the outcome in the journal and history. Returns the fault's final status, or
  // nothing if it ended without one (its Apply failed, or it is unknown).
  std::optional<v1::FaultStatus> RevertEntry(Lock& lock, const std::string& id,
                                             const std::string& reason);
  // The status of an ended fault, from the history.
  std::optional<v1::FaultStatus> Ended(const std::string& id) const;
  // Undoes what a failed Apply may have done and journals the outcome; returns the message.
  std::string UndoFailedApply(Lock& lock, const std::string& id, faults::Fault& fault,
                              const std::string& experiment, std::string why);
  void OnDeadline(const std::string& id);
  void RevertAtDeadline(const std::string& id);
  void Reschedule(const std::string& id, Entry& e);
  std::string NewId();
  // `e.status` with the fault's current description and counters when nobody else is using
  // the fault; as last recorded otherwise.
  v1::FaultStatus Snapshot(const Entry& e) const {
    return e.phase == Entry::Phase::kActive ? Snapshot(*e.fault, e.status) : e.status;
  }
  // `status` with the fault's current description and counters.
  static v1::FaultStatus Snapshot(const faults::Fault& fault, v1::FaultStatus status);
  // Keeps an ended fault for List(include_ended), bounded by options_.ended_history.
  void RememberEnded(const v1::FaultStatus& status);
  // Waits for deadline reverts still running (destructor, Shutdown).
  void JoinDeadlineReverts();

  const faults::Registry& registry_;
  faults::FaultContext ctx_;
  faults::Journal& journal_;
  Options options_;
  mutable std::mutex mu_;
  // Notified whenever an entry leaves kApplying or kReverting, or is erased.
  std::condition_variable settled_;
  std::map<std::string, Entry> active_;
  std::deque<v1::FaultStatus> ended_;
  ManagerMetrics metrics_;
  uint64_t id_counter_ = 0;
  // Deadline reverts in flight (under mu_); finished ones are reaped on the next launch.
  std::vector<std::future<void>> deadline_reverts_;
  // Declared last: its thread calls OnDeadline, so it must stop before the rest is destroyed.
  std::unique_ptr<faults::DeadlineTimer> timer_;
};

}  // namespace faultline::agent
