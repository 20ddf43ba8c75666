#include "controller/verify/traffic_checks.h"

#include <algorithm>
#include <limits>
#include <map>
#include <unordered_map>

#include "controller/verify/history_checks.h"
#include "controller/verify/proven.h"

namespace faultline::verify {

using nlohmann::json;

namespace {

constexpr size_t kMaxExamples = 10;

}  // namespace

// See CheckLeases: what a key may outlive its lease's TTL by, beyond one more TTL.
constexpr int64_t kExpirySlack = 5'000'000'000;

CheckResult CheckLeases(const History& h) {
  CheckResult r{"leases"};
  constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  struct Lease {
    std::vector<const AdminOp*> renewals;   // grants and keep-alives answered with a TTL
    const AdminOp* revoked = nullptr;       // the first acknowledged revocation
    int64_t first_revoke_invoke = kNever;   // any revocation, answered or not
    std::map<std::string, const Op*> puts;  // key -> its acknowledged put with this lease
    int64_t ttl_ns = 0;                     // as granted
    // The latest moment a renewal (answered, or sent without an answer) could have started
    // the TTL from: the return of the last one.
    int64_t last_renewal_return = 0;
  };
  std::unordered_map<int64_t, Lease> leases;
  size_t granted = 0, revoked = 0;
  for (const AdminOp& a : h.admin) {
    if (a.lease == 0) continue;
    Lease& l = leases[a.lease];
    switch (a.kind) {
      case AdminOp::Kind::kLeaseGrant:
      case AdminOp::Kind::kLeaseKeepAlive:
        if (a.outcome == Outcome::kOk && a.ttl > 0) l.renewals.push_back(&a);
        if (a.kind == AdminOp::Kind::kLeaseGrant && a.outcome == Outcome::kOk) {
          l.ttl_ns = a.ttl * 1'000'000'000;
        }
        if (a.outcome != Outcome::kFailed) {
          l.last_renewal_return = std::max(l.last_renewal_return, a.return_ns);
        }
        if (a.kind == AdminOp::Kind::kLeaseGrant && a.outcome == Outcome::kOk) ++granted;
        break;
      case AdminOp::Kind::kLeaseRevoke:
        if (a.outcome != Outcome::kFailed) {
          l.first_revoke_invoke = std::min(l.first_revoke_invoke, a.invoke_ns);
        }
        if (a.outcome == Outcome::kOk && (!l.revoked || a.return_ns < l.revoked->return_ns)) {
          if (!l.revoked) ++revoked;
          l.revoked = &a;
        }
        break;
      default:
        break;
    }
  }
  for (const Op& op : h.ops) {
    if (op.lease != 0 && op.type == OpType::kPut && op.outcome == Outcome::kOk) {
      leases[op.lease].puts[op.key] = &op;
    }
  }
  json examples = json::array();
  size_t outlived = 0, expired_late = 0, vanished = 0, reads = 0;
  auto finding = [&](json j) {
    if (examples.size() < kMaxExamples) examples.push_back(std::move(j));
  };
  for (const Op& op : h.ops) {
    if (op.lease == 0 || op.type != OpType::kGet || op.outcome != Outcome::kOk || op.serializable) {
      continue;
    }
    auto it = leases.find(op.lease);
    if (it == leases.end()) continue;
    const Lease& l = it->second;
    ++reads;
    if (l.revoked && op.invoke_ns > l.revoked->return_ns && op.found) {
      ++outlived;
      finding({{"problem", "outlived its lease"},
               {"lease", op.lease},
               {"key", op.key},
               {"read", OpBrief(op)},
               {"read_value", op.read_value},
               {"revoked_at_revision", l.revoked->revision},
               {"message", "key " + op.key + " was still there (read op " + std::to_string(op.id) +
                               " at revision " + std::to_string(op.revision) + ") after lease " +
                               std::to_string(op.lease) + " was revoked at revision " +
                               std::to_string(l.revoked->revision)}});
      continue;
    }
    // Expiry: etcd ends a lease TTL after the last renewal it applied (checked every 500 ms,
    // revoked through raft), and a new leader restarts every lease's TTL from its promotion plus
    // an election timeout, so a key may legitimately live up to two TTLs after the last renewal;
    // kExpirySlack covers the checks, the revoke's round and the election timeout.
    const int64_t expired_by = l.ttl_ns > 0 ? l.last_renewal_return + 2 * l.ttl_ns + kExpirySlack
                                            : std::numeric_limits<int64_t>::max();
    if (op.found && op.invoke_ns > expired_by && op.invoke_ns < l.first_revoke_invoke) {
      ++expired_late;
      const int64_t past_ttl = (op.invoke_ns - l.last_renewal_return - l.ttl_ns) / 1'000'000;
      finding({{"problem", "outlived its TTL"},
               {"lease", op.lease},
               {"key", op.key},
               {"read", OpBrief(op)},
               {"read_value", op.read_value},
               {"ttl_s", l.ttl_ns / 1'000'000'000},
               {"ms_past_ttl", past_ttl},
               {"message", "key " + op.key + " was still there (read op " + std::to_string(op.id) +
                               " at revision " + std::to_string(op.revision) + ") " +
                               std::to_string(past_ttl) + " ms after its lease " +
                               std::to_string(op.lease) + "'s " +
                               std::to_string(l.ttl_ns / 1'000'000'000) +
                               " s TTL ran out (no keep-alive or revocation sent since)"}});
      continue;
    }
    if (op.found) continue;
    auto put = l.puts.find(op.key);
    if (put == l.puts.end() || put->second->return_ns >= op.invoke_ns) continue;
    // The lease certainly lives until TTL after the invocation of the last renewal that was
    // answered before the read began (the leader starts the TTL when it applies it).
    int64_t alive_until = 0;
    for (const AdminOp* a : l.renewals) {
      if (a->return_ns < op.invoke_ns)
        alive_until = std::max(alive_until, a->invoke_ns + a->ttl * 1'000'000'000);
    }
    if (op.return_ns < alive_until && op.return_ns < l.first_revoke_invoke) {
      ++vanished;
      finding({{"problem", "vanished while its lease lived"},
               {"lease", op.lease},
               {"key", op.key},
               {"read", OpBrief(op)},
               {"put", OpBrief(*put->second)},
               {"message", "key " + op.key + " was gone (read op " + std::to_string(op.id) +
                               " at revision " + std::to_string(op.revision) + ") while lease " +
                               std::to_string(op.lease) + " still had " +
                               std::to_string((alive_until - op.return_ns) / 1'000'000) +
                               " ms to live and no revocation had been sent"}});
    }
  }
  r.evidence = {{"leases", leases.size()}, {"granted", granted},   {"revoked", revoked},
                {"reads_checked", reads},  {"outlived", outlived}, {"expired_late", expired_late},
                {"vanished", vanished},    {"examples", examples}};
  if (granted == 0 && reads == 0) {
    r.passed = false;
    r.summary = "no lease traffic recorded: nothing to check";
    return r;
  }
  r.passed = outlived == 0 && expired_late == 0 && vanished == 0;
  r.summary = r.passed
                  ? std::to_string(granted) + " lease(s) granted, " + std::to_string(revoked) +
                        " revoked, " + std::to_string(reads) +
                        " reads of their keys: none outlived its revocation or TTL, or vanished "
                        "early"
                  : examples[0]["message"].get<std::string>() + " (" + std::to_string(outlived) +
                        " outlived their revocation, " + std::to_string(expired_late) +
                        " their TTL, " + std::to_string(vanished) + " vanished)";
  return r;
}

CheckResult CheckPastReads(const History& h) {
  CheckResult r{"past-reads"};
  ProvenChanges p(h);
  std::unordered_map<std::string_view, int64_t> unknown_delete;  // key -> earliest invoke
  for (const Op& op : h.ops) {
    if (op.type == OpType::kDelete && op.outcome == Outcome::kUnknown) {
      auto [it, fresh] = unknown_delete.try_emplace(op.key, op.invoke_ns);
      if (!fresh) it->second = std::min(it->second, op.invoke_ns);
    }
  }
  json examples = json::array();
  size_t findings = 0, reads = 0, keys_checked = 0;
  // One key as a read at revision `at` showed it; `who` names the read.
  auto judge = [&](const std::string& who, json read, std::string_view key, int64_t at, bool found,
                   std::string_view value, int64_t mod, int64_t returned) {
    ++keys_checked;
    const uint32_t id = p.Id(key);
    std::string problem;
    const ProvenChanges::Change* proof = nullptr;
    if (found) {
      const ProvenChanges::Change* written = p.AtOrBefore(id, mod);
      if (mod > at) {
        problem = "returned a value written at revision " + std::to_string(mod) + ", after " +
                  std::to_string(at);
      } else if (written && written->rev == mod && (written->del || written->value != value)) {
        proof = written;
        problem = "returned \"" + std::string(value) + "\" @" + std::to_string(mod) +
                  " where the history has " +
                  DescribeChange(written->del, key, written->rev, written->value);
      } else if (const auto* later = p.After(id, mod, at)) {
        proof = later;
        problem = "returned \"" + std::string(value) + "\" @" + std::to_string(mod) +
                  ", stale: the key changed later, " +
                  DescribeChange(later->del, key, later->rev, later->value);
      }
    } else {
      const ProvenChanges::Change* last = p.AtOrBefore(id, at);
      auto ud = unknown_delete.find(key);
      bool excused = ud != unknown_delete.end() && ud->second < returned;
      if (last && !last->del && !excused) {
        proof = last;
        problem =
            "found nothing, but the key held " + DescribeChange(false, key, last->rev, last->value);
      }
    }
    if (problem.empty()) return;
    ++findings;
    if (examples.size() < kMaxExamples) {
      json j = {
          {"read", std::move(read)},
          {"key", key},
          {"revision", at},
          {"message", who + ": " + std::string(key) + " at revision " + std::to_string(at) + " " +
                          problem + (proof ? " (" + ProvenChanges::Proof(*proof) + ")" : "")}};
      examples.push_back(std::move(j));
    }
  };
  for (const Op& op : h.ops) {
    if (op.past_revision <= 0 || op.outcome != Outcome::kOk) continue;
    ++reads;
    judge("op " + std::to_string(op.id) + " (client " + std::to_string(op.client) + ")",
          OpBrief(op), op.key, op.past_revision, op.past_found, op.past_value, op.past_mod_revision,
          op.return_ns);
  }
  for (const ListOp& l : h.lists) {
    if (l.outcome != Outcome::kOk) continue;
    ++reads;
    const int64_t at = l.at_revision > 0 ? l.at_revision : l.revision;
    const std::string who = "list " + std::to_string(l.id) + " (client " +
                            std::to_string(l.client) + ", " + l.endpoint + ")";
    json brief = {{"id", l.id},      {"client", l.client}, {"endpoint", l.endpoint},
                  {"prefix", l.key}, {"revision", at},     {"kvs", l.kvs.size()}};
    std::unordered_map<std::string_view, bool> listed;
    for (const ListOp::Kv& kv : l.kvs) {
      listed[kv.key] = true;
      judge(who, brief, kv.key, at, true, kv.value, kv.mod_revision, l.return_ns);
    }
    const size_t known_keys = p.keys().size();
    for (size_t k = 0; k < known_keys; ++k) {
      const std::string_view key = p.Key(static_cast<uint32_t>(k));
      if (listed.count(key) || key < std::string_view(l.key)) continue;
      if (!l.range_end.empty() && key >= std::string_view(l.range_end)) continue;
      if (l.range_end.empty() && key != l.key) continue;
      judge(who, brief, key, at, false, "", 0, l.return_ns);
    }
  }
  r.evidence = {{"reads", reads},
                {"keys_checked", keys_checked},
                {"findings", findings},
                {"examples", examples}};
  if (reads == 0) {
    r.passed = false;
    r.summary = "no read at a past revision and no list recorded: nothing to check";
    return r;
  }
  r.passed = findings == 0;
  r.summary = r.passed ? std::to_string(reads) + " past reads and lists (" +
                             std::to_string(keys_checked) + " keys) agree with the history"
                       : std::to_string(findings) +
                             " finding(s); first: " + examples[0]["message"].get<std::string>();
  return r;
}

}  // namespace faultline::verify
