#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace faultline::controller {

// One controller process, as the other replicas and the CLI see it.
struct ReplicaInfo {
  std::string id;       // unique per process ("<hostname>-<pid>")
  std::string address;  // where the CLI reaches it (--advertise)
};

// The fencing token of an active term, sent with every Inject and Renew so agents refuse a
// deposed replica (agent/controller_fences.h).
struct LeadershipTerm {
  std::string controller;  // shared by every replica of this controller (its state store)
  int64_t epoch = 0;       // higher for every later term
};

// Which replica is the active controller. Only the active one runs schedules and runs; the
// others stand by and take over when it goes away. The service drives it in one thread:
// Campaign() until active, run, WaitLost(), step down, Campaign() again.
class Leadership {
 public:
  virtual ~Leadership() = default;

  // Blocks until this replica is the active one (true) or Stop() was called (false).
  virtual bool Campaign() = 0;
  // Blocks while this replica is active: returns once it is not (lease lost, election key taken,
  // a write fenced) or Stop() was called.
  virtual void WaitLost() = 0;
  virtual bool active() const = 0;
  // The active replica as last seen, if any.
  virtual std::optional<ReplicaInfo> Active() const = 0;
  // Every live replica (active and standbys) as last seen.
  virtual std::vector<ReplicaInfo> Replicas() const = 0;
  virtual const ReplicaInfo& self() const = 0;
  // Why the last active term ended ("" if none ended).
  virtual std::string lost_reason() const = 0;
  // Unblocks Campaign()/WaitLost() for shutdown; an active replica stays active (and its writes
  // allowed) until Resign(), so it can still record how its runs ended.
  virtual void Stop() = 0;
  // Gives the election up at once so a standby takes over without waiting for a lease to lapse.
  virtual void Resign() = 0;
  // The current term while active and elected; none without an election (the sole replica),
  // whose agent calls go unfenced.
  virtual std::optional<LeadershipTerm> Term() const { return std::nullopt; }
};

// The embedded store's leadership: one controller, always active (the store's lock keeps a
// second one out).
class SoleReplica final : public Leadership {
 public:
  explicit SoleReplica(ReplicaInfo self) : self_(std::move(self)) {}
  bool Campaign() override {
    std::lock_guard lock(mu_);
    return !stopped_;
  }
  void WaitLost() override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return stopped_; });
  }
  bool active() const override { return true; }
  std::optional<ReplicaInfo> Active() const override { return self_; }
  std::vector<ReplicaInfo> Replicas() const override { return {self_}; }
  const ReplicaInfo& self() const override { return self_; }
  std::string lost_reason() const override { return ""; }
  void Stop() override {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
  }
  void Resign() override { Stop(); }

 private:
  ReplicaInfo self_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

}  // namespace faultline::controller
