#include "controller/state/etcd_election.h"

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "controller/verify/client.h"
#include "faults/core/log_line.h"

namespace faultline::controller {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string InfoJson(const ReplicaInfo& r) {
  return nlohmann::json{{"id", r.id}, {"address", r.address}}.dump();
}

std::optional<ReplicaInfo> InfoFrom(const std::string& value) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return ReplicaInfo{"?", value};
  return ReplicaInfo{j.value("id", "?"), j.value("address", "")};
}

}  // namespace

EtcdElection::EtcdElection(const EtcdKeyspace& keyspace, ElectionOptions options)
    : ks_(keyspace), opt_(std::move(options)) {
  if (opt_.ttl.count() < 1) throw std::invalid_argument("election ttl: must be at least 1s");
  if (opt_.poll.count() <= 0) {
    opt_.poll = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(opt_.ttl) / 5,
                           std::chrono::milliseconds(100), std::chrono::milliseconds(1000));
  }
  thread_ = std::thread([this] { Loop(); });
}

EtcdElection::~EtcdElection() {
  {
    std::lock_guard lock(mu_);
    quit_ = released_ = true;
  }
  tick_.notify_all();
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EtcdElection::Log(const std::string& msg) const {
  if (opt_.log) {
    opt_.log(msg);
  } else {
    faults::LogLine("faultline-controller", msg);
  }
}

bool EtcdElection::Campaign() {
  std::unique_lock lock(mu_);
  if (released_) return false;
  campaigning_ = kicked_ = true;
  tick_.notify_all();
  cv_.wait(lock, [&] { return released_ || fence_.has_value(); });
  campaigning_ = false;
  return fence_.has_value() && !released_;
}

void EtcdElection::WaitLost() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return released_ || !fence_.has_value(); });
}

bool EtcdElection::active() const {
  std::lock_guard lock(mu_);
  return fence_.has_value();
}

std::optional<ReplicaInfo> EtcdElection::Active() const {
  std::lock_guard lock(mu_);
  return active_;
}

std::vector<ReplicaInfo> EtcdElection::Replicas() const {
  try {
    verify::pb::RangeRequest req;
    req.set_key(ks_.replicas_prefix());
    req.set_range_end(verify::PrefixEnd(ks_.replicas_prefix()));
    auto resp = ks_.Call([&](size_t i) { return ks_.election_client().Range(i, req); });
    std::vector<ReplicaInfo> out;
    for (const auto& kv : resp.kvs()) out.push_back(*InfoFrom(kv.value()));
    return out;
  } catch (const std::exception&) {
    return {opt_.self};  // the store is unreachable: this one is all that is known
  }
}

std::string EtcdElection::lost_reason() const {
  std::lock_guard lock(mu_);
  return lost_reason_;
}

std::optional<int64_t> EtcdElection::Fence() const {
  std::lock_guard lock(mu_);
  return fence_;
}

std::optional<LeadershipTerm> EtcdElection::Term() const {
  std::lock_guard lock(mu_);
  if (!fence_) return std::nullopt;
  return LeadershipTerm{"etcd-" + verify::HexId(cluster_id_) + ks_.prefix(), *fence_};
}

void EtcdElection::Fenced(int64_t fence) {
  std::lock_guard lock(mu_);
  if (fence_ == fence) Lose("a write was refused: another replica holds the election");
}

void EtcdElection::Lose(const std::string& why) {
  fence_.reset();
  lost_reason_ = why;
  Log("no longer the active controller: " + why);
  cv_.notify_all();
}

void EtcdElection::Stop() {
  {
    std::lock_guard lock(mu_);
    released_ = true;
  }
  cv_.notify_all();
}

void EtcdElection::Resign() {
  {
    std::lock_guard lock(mu_);
    quit_ = released_ = true;
  }
  tick_.notify_all();
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (lease_ != 0) {
    // Revoking deletes the election key (and this replica's key) with the lease: a standby sees
    // it gone at its next poll instead of after the TTL.
    try {
      ks_.Call([&](size_t i) { return ks_.election_client().LeaseRevoke(i, lease_); });
      Log("resigned: election lease revoked");
    } catch (const std::exception& e) {
      Log(std::string("resign: cannot revoke the election lease (a standby takes over when it "
                      "lapses): ") +
          e.what());
    }
    lease_ = 0;
  }
  std::lock_guard lock(mu_);
  fence_.reset();
}

void EtcdElection::Loop() {
  std::unique_lock lock(mu_);
  while (!quit_) {
    kicked_ = false;  // this round serves every kick so far
    lock.unlock();
    Tick();
    lock.lock();
    if (quit_) break;
    tick_.wait_for(lock, opt_.poll, [&] { return quit_ || kicked_; });
  }
}

// One round: renew (or get) the lease, look at the election key, campaign if asked. RPCs run
// without mu_ held so Fence() and the waiters are never blocked on the network.
void EtcdElection::Tick() {
  std::string lease_error;
  try {
    const auto sent = Clock::now();
    if (lease_ == 0) {
      auto g =
          ks_.Call([&](size_t i) { return ks_.election_client().LeaseGrant(i, opt_.ttl.count()); });
      if (!g.error().empty()) throw std::runtime_error("LeaseGrant: " + g.error());
      lease_ = g.id();
      lease_deadline_ = sent + std::chrono::seconds(g.ttl());
      verify::pb::PutRequest put;
      put.set_key(ks_.replicas_prefix() + opt_.self.id);
      put.set_value(InfoJson(opt_.self));
      put.set_lease(lease_);
      ks_.Call([&](size_t i) { return ks_.election_client().Put(i, put); });
    } else {
      int64_t ttl =
          ks_.Call([&](size_t i) { return ks_.election_client().LeaseKeepAliveOnce(i, lease_); });
      if (ttl <= 0) {
        lease_ = 0;  // a new one next round
        std::lock_guard lock(mu_);
        if (fence_) Lose("the election lease expired");
      } else {
        lease_deadline_ = sent + std::chrono::seconds(ttl);
      }
    }
  } catch (const std::exception& e) {
    lease_error = e.what();
  }
  if (lease_error != last_error_) {
    Log(lease_error.empty() ? "state store reachable again"
                            : "state store: cannot renew the election lease: " + lease_error);
    last_error_ = lease_error;
  }
  {
    // Step down before etcd can expire the lease: the deadline counts from the renewal's send
    // time, and the next round may come a poll later.
    std::lock_guard lock(mu_);
    auto margin = std::min<Clock::duration>(opt_.poll, opt_.ttl / 3);
    if (fence_ && Clock::now() + margin >= lease_deadline_) {
      Lose("the election lease could not be renewed in time" +
           (lease_error.empty() ? std::string() : ": " + lease_error));
      lease_ = 0;
    }
  }
  if (lease_ == 0 && !lease_error.empty()) return;

  verify::pb::RangeResponse held;
  try {
    verify::pb::RangeRequest req;
    req.set_key(ks_.leader_key());
    held = ks_.Call([&](size_t i) { return ks_.election_client().Range(i, req); });
  } catch (const std::exception&) {
    return;  // unreachable: the lease deadline decides
  }
  int64_t holder_rev = 0;
  std::optional<ReplicaInfo> holder;
  if (held.kvs_size() > 0) {
    holder_rev = held.kvs(0).create_revision();
    holder = InfoFrom(held.kvs(0).value());
    // A campaign whose reply was lost but which did succeed: the key is ours, on our lease.
    std::lock_guard lock(mu_);
    if (!fence_ && campaigning_ && held.kvs(0).lease() == lease_ && lease_ != 0) {
      fence_ = holder_rev;
      cluster_id_ = held.header().cluster_id();
      active_ = holder;
      Log("active (election term " + std::to_string(holder_rev) + ")");
      cv_.notify_all();
      return;
    }
  }
  bool campaign = false;
  {
    std::lock_guard lock(mu_);
    active_ = holder;
    std::string holder_id = holder ? holder->id : "";
    if (holder_id != last_holder_id_ && holder_id != opt_.self.id) {
      Log(holder ? "standing by: the active controller is " + holder->id + " at " + holder->address
                 : "no active controller");
    }
    last_holder_id_ = holder_id;
    if (fence_ && holder_rev != *fence_) {
      Lose(holder ? "the election key is held by " + holder->id : "the election key was deleted");
    }
    campaign = campaigning_ && !fence_ && !released_ && holder_rev == 0 && lease_ != 0;
  }
  if (!campaign) return;
  verify::pb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key(ks_.leader_key());
  cmp->set_target(verify::pb::Compare::CREATE);
  cmp->set_result(verify::pb::Compare::EQUAL);
  cmp->set_create_revision(0);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(ks_.leader_key());
  put->set_value(InfoJson(opt_.self));
  put->set_lease(lease_);
  txn.add_failure()->mutable_request_range()->set_key(ks_.leader_key());
  try {
    auto resp = ks_.Call([&](size_t i) { return ks_.election_client().Txn(i, txn); });
    std::lock_guard lock(mu_);
    if (resp.succeeded()) {
      // The key did not exist, so its create revision is this transaction's revision.
      fence_ = resp.header().revision();
      cluster_id_ = resp.header().cluster_id();
      active_ = opt_.self;
      lost_reason_.clear();
      Log("active (election term " + std::to_string(*fence_) + ", lease ttl " +
          std::to_string(opt_.ttl.count()) + "s)");
      cv_.notify_all();
    } else if (resp.responses_size() > 0 && resp.responses(0).response_range().kvs_size() > 0) {
      active_ = InfoFrom(resp.responses(0).response_range().kvs(0).value());
    }
  } catch (const std::exception&) {
    // Unreachable now; the next round tries again (and adopts the key if this one did land).
  }
}

}  // namespace faultline::controller
