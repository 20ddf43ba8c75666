#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "controller/state/etcd_keyspace.h"
#include "controller/state/leadership.h"

namespace faultline::controller {

struct ElectionOptions {
  ReplicaInfo self;
  // The election lease: an active replica that stops renewing it (crash, partition, stall) loses
  // the election this long after its last renewal, and a standby takes over.
  std::chrono::seconds ttl{5};
  // How often the lease is renewed and the election key looked at (a standby campaigns then).
  // Zero: ttl/5, between 100 ms and 1 s (always well under ttl/3).
  std::chrono::milliseconds poll{0};
  std::function<void(const std::string&)> log;  // transitions; default: stderr
};

// Leader election on an etcd lease. Every replica holds a lease (renewed every poll) and a
// replica key bound to it; a campaigning standby creates the election key bound to its lease if
// it is absent (one Txn: create revision == 0). The winner's term is the key's create revision:
// EtcdStore conditions every write on it, so a deposed replica that has not noticed yet cannot
// write. A replica stops being active when its lease is gone, when it could not renew the lease
// before the lease would have lapsed (measured from the renewal's send time, so it steps down
// no later than etcd expires the lease), when the key is no longer its own, or on a fenced write.
class EtcdElection final : public Leadership {
 public:
  EtcdElection(const EtcdKeyspace& keyspace, ElectionOptions options);
  ~EtcdElection() override;  // stops the renewal thread; does not revoke (Resign does)
  EtcdElection(const EtcdElection&) = delete;
  EtcdElection& operator=(const EtcdElection&) = delete;

  bool Campaign() override;
  void WaitLost() override;
  bool active() const override;
  std::optional<ReplicaInfo> Active() const override;
  std::vector<ReplicaInfo> Replicas() const override;
  const ReplicaInfo& self() const override { return opt_.self; }
  std::string lost_reason() const override;
  void Stop() override;
  void Resign() override;

  // The current term (the election key's create revision) while active.
  std::optional<int64_t> Fence() const;
  // The fence agents see: this controller as "etcd-<cluster id hex><prefix>" and the term.
  std::optional<LeadershipTerm> Term() const override;
  // A write conditioned on `fence` was refused: if that is still this replica's term, it ended.
  void Fenced(int64_t fence);
  std::chrono::milliseconds poll() const { return opt_.poll; }

 private:
  void Loop();
  void Tick();
  void Lose(const std::string& why);  // with mu_ held
  void Log(const std::string& msg) const;

  const EtcdKeyspace& ks_;
  ElectionOptions opt_;
  mutable std::mutex mu_;
  std::condition_variable cv_;    // wakes waiters (Campaign/WaitLost) on a change
  std::condition_variable tick_;  // wakes the loop early (campaign asked, stop)
  bool campaigning_ = false;
  bool kicked_ = false;    // a round is wanted now (campaign asked) even if one is under way
  bool released_ = false;  // Stop(): waiters return
  bool quit_ = false;      // the loop ends
  std::optional<int64_t> fence_;
  uint64_t cluster_id_ = 0;  // the state etcd's, from the reply that made this replica active
  std::string lost_reason_;
  std::optional<ReplicaInfo> active_;
  std::vector<ReplicaInfo> replicas_;
  // Owned by the loop thread (and Resign after it ended).
  std::string last_error_;      // logged once per change
  std::string last_holder_id_;  // logged when another replica becomes active
  int64_t lease_ = 0;
  std::chrono::steady_clock::time_point lease_deadline_{};
  std::thread thread_;
};

}  // namespace faultline::controller
