#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "controller/verify/check_result.h"
#include "controller/verify/client.h"

namespace faultline::verify {

// What one member said about itself (Status), or why it did not answer.
struct MemberStatus {
  std::string endpoint;
  bool answered = false;
  std::string error;
  uint64_t member_id = 0;
  uint64_t leader = 0;
  uint64_t raft_term = 0;
  uint64_t raft_index = 0;
  uint64_t applied_index = 0;
  int64_t revision = 0;
  int64_t db_size = 0;
  int64_t db_size_in_use = 0;
  bool is_learner = false;
  std::string version;
  std::string name;  // from MemberList, when some member answered it
};

std::vector<MemberStatus> CollectStatus(const EtcdClient& client);
nlohmann::json ToJson(const MemberStatus& m);

struct ClusterCheckOptions {
  std::chrono::milliseconds convergence_timeout{10000};
  // HashKV and key counts wait this long for a revision every member can answer at.
  std::chrono::milliseconds revision_wait{5000};
  // Key count is compared for the whole keyspace and for each of these prefixes.
  std::vector<std::string> prefixes;
  int64_t quota_bytes = 2LL << 30;    // etcd's default --quota-backend-bytes
  double quota_fail_ratio = 0.9;      // db size above this share of the quota fails
  size_t big_keys = 10;               // largest values to report
  int64_t big_value_bytes = 1 << 20;  // a value this large fails the big-key inspection
  size_t max_scan_keys = 200000;      // the big-key/prefix scan reads at most this many keys
  int prefix_depth = 2;               // keys per prefix: group by the first N '/'-separated parts
};

// Every member answers Status; exactly one member is leader; all agree on leader and term.
CheckResult CheckHealth(const EtcdClient& client);
// Polls Status until every member's applied index is the same (bounded by `timeout`).
CheckResult CheckConvergence(const EtcdClient& client, std::chrono::milliseconds timeout);
// Members with the same applied index have the same revision (and, converged, all do).
CheckResult CheckRevisions(const EtcdClient& client);
// HashKV at one revision every member can hash: after every member's compact revision and
// reached by all (waiting up to `wait` for members to get there, asking again when a compaction
// passes it); same hash and compact revision everywhere, outliers named, each member's revision
// and compact revision reported. Fails without a hash only when no such revision exists, naming
// the members whose revisions stayed apart (diverged, when at the same applied index).
CheckResult CheckHashKV(const EtcdClient& client,
                        std::chrono::milliseconds wait = std::chrono::milliseconds(5000));
// Serializable count-only range on each member at one common revision, whole keyspace and per
// prefix: the "node key diff"; outliers named. A count a compaction made OUT_OF_RANGE is asked
// again (up to `wait`).
CheckResult CheckKeyCounts(const EtcdClient& client, const std::vector<std::string>& prefixes,
                           std::chrono::milliseconds wait = std::chrono::milliseconds(5000));
// No NOSPACE or CORRUPT alarm raised.
CheckResult CheckAlarms(const EtcdClient& client);
// Each member's db size against the quota.
CheckResult CheckDbSize(const EtcdClient& client, int64_t quota_bytes, double fail_ratio);
// One scan of the keyspace through one member: the largest values ("big keys") and the number
// of keys and bytes per prefix.
std::vector<CheckResult> InspectKeyspace(const EtcdClient& client,
                                         const ClusterCheckOptions& options);

// All of the above, in that order: what `faultline check etcd` prints.
std::vector<CheckResult> RunClusterChecks(const EtcdClient& client,
                                          const ClusterCheckOptions& options = {});

}  // namespace faultline::verify
