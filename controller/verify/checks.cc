#include "controller/verify/checks.h"

#include <algorithm>
#include <map>
#include <set>
#include <thread>

namespace faultline::verify {

using nlohmann::json;

namespace {

std::string Label(const MemberStatus& m) {
  return m.name.empty() ? m.endpoint : m.name + " (" + m.endpoint + ")";
}

// "a 1, b 2, c 1": every member's value, for summaries that must not take a side.
std::string EveryValue(const std::vector<std::pair<std::string, std::string>>& member_values) {
  std::string out;
  for (const auto& [m, v] : member_values) {
    if (!out.empty()) out += ", ";
    out += m;
    out += ' ';
    out += v;
  }
  return out;
}

// The value most members report, and the members that report something else.
struct Outliers {
  std::string majority;
  size_t majority_count = 0;
  std::vector<std::string> members;
};
Outliers FindOutliers(const std::vector<std::pair<std::string, std::string>>& member_values) {
  std::map<std::string, size_t> votes;
  for (const auto& [m, v] : member_values) ++votes[v];
  Outliers o;
  for (const auto& [v, n] : votes) {
    if (n > o.majority_count) {
      o.majority = v;
      o.majority_count = n;
    }
  }
  // A tie has no majority: every member is named.
  bool tie = std::count_if(votes.begin(), votes.end(),
                           [&](const auto& e) { return e.second == o.majority_count; }) > 1;
  for (const auto& [m, v] : member_values) {
    if (tie || v != o.majority) o.members.push_back(m);
  }
  return o;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::vector<const MemberStatus*> Answered(const std::vector<MemberStatus>& ms) {
  std::vector<const MemberStatus*> out;
  for (const auto& m : ms) {
    if (m.answered) out.push_back(&m);
  }
  return out;
}

CheckResult NoMemberAnswered(const std::string& name, const std::vector<MemberStatus>& ms) {
  CheckResult r{name};
  r.summary = "no member answered";
  for (const auto& m : ms) r.evidence[m.endpoint] = ToJson(m);
  return r;
}

// Members that did not answer, for checks that can only vouch for the ones that did.
std::vector<std::string> Silent(const std::vector<MemberStatus>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) {
    if (!m.answered) out.push_back(m.endpoint);
  }
  return out;
}

// A check that passed on the answering members still fails if some member could not be asked.
void FailIfSilent(const std::vector<MemberStatus>& ms, CheckResult* r) {
  std::vector<std::string> silent = Silent(ms);
  if (silent.empty()) return;
  r->evidence["not_answering"] = silent;
  if (r->passed) r->summary = "on the members that answered: " + r->summary;
  r->passed = false;
  r->summary = "not answering: " + Join(silent) + "; " + r->summary;
}

}  // namespace

std::vector<MemberStatus> CollectStatus(const EtcdClient& client) {
  std::vector<MemberStatus> out(client.size());
  // Ask in parallel: a paused member must not make the others wait for its timeout.
  std::vector<std::thread> threads;
  for (size_t i = 0; i < client.size(); ++i) {
    threads.emplace_back([&, i] {
      MemberStatus& m = out[i];
      m.endpoint = client.endpoint(i);
      try {
        pb::StatusResponse s = client.Status(i);
        m.answered = true;
        m.member_id = s.header().member_id();
        m.leader = s.leader();
        m.raft_term = s.raftterm();
        m.raft_index = s.raftindex();
        m.applied_index = s.raftappliedindex();
        m.revision = s.header().revision();
        m.db_size = s.dbsize();
        m.db_size_in_use = s.dbsizeinuse();
        m.is_learner = s.islearner();
        m.version = s.version();
      } catch (const EtcdError& e) {
        m.error = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < out.size(); ++i) {
    if (!out[i].answered) continue;
    try {
      pb::MemberListResponse ml = client.MemberList(i);
      std::map<uint64_t, std::string> names;
      for (const auto& mem : ml.members()) names[mem.id()] = mem.name();
      for (auto& m : out) {
        if (m.answered && names.count(m.member_id)) m.name = names[m.member_id];
      }
      break;
    } catch (const EtcdError&) {
    }
  }
  return out;
}

json ToJson(const MemberStatus& m) {
  if (!m.answered) return {{"answered", false}, {"error", m.error}};
  return {{"answered", true},
          {"name", m.name},
          {"member_id", HexId(m.member_id)},
          {"leader", HexId(m.leader)},
          {"raft_term", m.raft_term},
          {"raft_index", m.raft_index},
          {"applied_index", m.applied_index},
          {"revision", m.revision},
          {"db_size", m.db_size},
          {"db_size_in_use", m.db_size_in_use},
          {"is_learner", m.is_learner},
          {"version", m.version}};
}

CheckResult CheckHealth(const EtcdClient& client) {
  CheckResult r{"health"};
  std::vector<MemberStatus> ms = CollectStatus(client);
  std::vector<std::string> problems, silent;
  std::set<uint64_t> leaders, terms;
  size_t self_leaders = 0;
  for (const auto& m : ms) {
    r.evidence["members"][m.endpoint] = ToJson(m);
    if (!m.answered) {
      silent.push_back(m.endpoint);
      continue;
    }
    leaders.insert(m.leader);
    terms.insert(m.raft_term);
    if (m.leader != 0 && m.leader == m.member_id) ++self_leaders;
  }
  if (!silent.empty()) problems.push_back("not answering: " + Join(silent));
  if (leaders.count(0)) problems.push_back("a member knows no leader");
  if (leaders.size() > 1) problems.push_back("members disagree on the leader");
  if (terms.size() > 1) problems.push_back("members disagree on the raft term");
  if (self_leaders != 1 && silent.empty()) {
    problems.push_back(std::to_string(self_leaders) + " members claim to be leader");
  }
  r.evidence["leaders_reported"] = json::array();
  for (uint64_t l : leaders) r.evidence["leaders_reported"].push_back(HexId(l));
  r.evidence["terms_reported"] = terms;
  r.passed = problems.empty();
  if (r.passed) {
    r.summary = std::to_string(ms.size()) + " members answer, leader " + HexId(*leaders.begin()) +
                " at term " + std::to_string(*terms.begin());
  } else {
    std::string s;
    for (const auto& p : problems) s += (s.empty() ? "" : "; ") + p;
    r.summary = s;
  }
  return r;
}

CheckResult CheckConvergence(const EtcdClient& client, std::chrono::milliseconds timeout) {
  CheckResult r{"convergence"};
  auto start = std::chrono::steady_clock::now();
  std::vector<MemberStatus> ms;
  bool converged = false;
  while (true) {
    ms = CollectStatus(client);
    std::set<uint64_t> applied;
    bool all = true;
    for (const auto& m : ms) {
      all = all && m.answered;
      if (m.answered) applied.insert(m.applied_index);
    }
    converged = all && applied.size() == 1;
    if (converged || std::chrono::steady_clock::now() - start >= timeout) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - start)
                    .count();
  for (const auto& m : ms) {
    r.evidence["members"][m.endpoint] =
        m.answered ? json{{"applied_index", m.applied_index}, {"raft_index", m.raft_index}}
                   : json{{"error", m.error}};
  }
  r.evidence["waited_ms"] = waited;
  r.passed = converged;
  if (converged) {
    r.summary = "applied index " + std::to_string(ms.front().applied_index) +
                " on every member after " + std::to_string(waited) + " ms";
  } else {
    std::string s;
    for (const auto& m : ms) {
      s += (s.empty() ? "" : ", ") + Label(m) + "=" +
           (m.answered ? std::to_string(m.applied_index) : std::string("no answer"));
    }
    r.summary = "applied indexes still differ after " + std::to_string(waited) + " ms: " + s;
  }
  return r;
}

CheckResult CheckRevisions(const EtcdClient& client) {
  CheckResult r{"revision"};
  std::vector<MemberStatus> ms = CollectStatus(client);
  auto answered = Answered(ms);
  if (answered.empty()) return NoMemberAnswered(r.name, ms);
  std::map<uint64_t, std::vector<const MemberStatus*>> by_applied;
  std::vector<std::pair<std::string, std::string>> revs;
  for (const MemberStatus* m : answered) {
    by_applied[m->applied_index].push_back(m);
    revs.push_back({Label(*m), std::to_string(m->revision)});
    r.evidence["members"][m->endpoint] = {
        {"name", m->name}, {"applied_index", m->applied_index}, {"revision", m->revision}};
  }
  std::vector<std::string> problems;
  for (const auto& [applied, group] : by_applied) {
    std::vector<std::pair<std::string, std::string>> g;
    for (const MemberStatus* m : group) g.push_back({Label(*m), std::to_string(m->revision)});
    // Every member's value, not "X differs from the rest": after the same log every member must
    // hold the same revision, and the majority is not always the right one (etcd#17780 sets two
    // restarted followers back while the leader keeps counting).
    if (!FindOutliers(g).members.empty()) {
      problems.push_back("at applied index " + std::to_string(applied) +
                         " the members hold different revisions: " + EveryValue(g));
    }
  }
  if (by_applied.size() == 1 && problems.empty()) {
    r.passed = true;
    r.summary = "revision " + revs.front().second + " on every member at applied index " +
                std::to_string(by_applied.begin()->first);
  } else if (problems.empty()) {
    r.passed = true;
    r.summary = "members at the same applied index agree (not converged: " +
                std::to_string(by_applied.size()) + " applied indexes)";
  } else {
    r.summary = Join(problems);
  }
  FailIfSilent(ms, &r);
  return r;
}

namespace {

// What HashKV told about one member: its current revision and compact revision (Status does not
// carry the compact revision; HashKV is the one call that tells it) and the hash at the revision
// asked (0: its current one).
struct HashAnswer {
  bool ok = false;
  bool compacted = false;  // OUT_OF_RANGE: the revision asked is compacted (or in the future)
  std::string error;
  int64_t revision = 0;
  int64_t compact = 0;
  uint32_t hash = 0;
};

std::vector<HashAnswer> AskHashes(const EtcdClient& client, const std::vector<MemberStatus>& ms,
                                  int64_t rev) {
  std::vector<HashAnswer> out(ms.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ms.size(); ++i) {
    if (!ms[i].answered) {
      out[i].error = ms[i].error;
      continue;
    }
    threads.emplace_back([&, i] {
      try {
        pb::HashKVResponse h = client.HashKV(i, rev);
        out[i].ok = true;
        out[i].revision = h.header().revision();
        out[i].compact = h.compact_revision();
        out[i].hash = h.hash();
      } catch (const EtcdError& e) {
        out[i].compacted = e.code() == grpc::StatusCode::OUT_OF_RANGE;
        out[i].error = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

}  // namespace

CheckResult CheckHashKV(const EtcdClient& client, std::chrono::milliseconds wait) {
  CheckResult r{"hashkv"};
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + wait;
  auto waited_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start)
        .count();
  };
  int out_of_range_retries = 0;
  std::vector<MemberStatus> ms;
  std::vector<HashAnswer> probe, hashed;
  int64_t at = 0;
  // A hash compares members only at one revision that each of them still has (after its compact
  // revision) and has reached; etcd answers OUT_OF_RANGE outside that. Each member's current
  // revision and compact revision come first (HashKV at revision 0), then the hash is taken at
  // the lowest current revision, retried while a compaction or a lagging member is in the way.
  while (true) {
    ms = CollectStatus(client);
    if (Answered(ms).empty()) return NoMemberAnswered(r.name, ms);
    probe = AskHashes(client, ms, 0);
    int64_t max_compact = 0, min_rev = 0, max_rev = 0;
    bool any = false;
    for (const HashAnswer& a : probe) {
      if (!a.ok) continue;
      max_compact = std::max(max_compact, a.compact);
      min_rev = any ? std::min(min_rev, a.revision) : a.revision;
      max_rev = std::max(max_rev, a.revision);
      any = true;
    }
    if (!any) {
      hashed = probe;
      break;
    }
    const bool late = std::chrono::steady_clock::now() >= deadline;
    if (min_rev == max_rev) {
      // All at one revision: the hashes at their current revision compare (also when that
      // revision is the compact revision, which cannot be asked for by number).
      at = min_rev;
      hashed = probe;
    } else if (min_rev > max_compact) {
      at = min_rev;
      hashed = AskHashes(client, ms, at);
      bool compacted = std::any_of(hashed.begin(), hashed.end(),
                                   [](const HashAnswer& a) { return a.compacted; });
      if (compacted && !late) {
        ++out_of_range_retries;  // a compaction passed `at` meanwhile: ask again
        continue;
      }
    } else {
      if (!late) {
        // Some member has not yet passed another's compact revision: wait for it.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      // No revision is both reached by every member and not compacted on any.
      at = -1;
      hashed = probe;
      break;
    }
    std::set<int64_t> compacts;
    for (const HashAnswer& a : hashed) {
      if (a.ok) compacts.insert(a.compact);
    }
    // A compaction applied on some members and not yet on others: its hash differs meanwhile.
    if (compacts.size() > 1 && !late) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    break;
  }
  r.evidence["waited_ms"] = waited_ms();
  r.evidence["out_of_range_retries"] = out_of_range_retries;
  std::vector<std::pair<std::string, std::string>> values, revisions;
  std::vector<std::string> errors;
  for (size_t i = 0; i < ms.size(); ++i) {
    const HashAnswer& p = probe[i];
    const HashAnswer& a = hashed[i];
    json m = {{"name", ms[i].name}};
    if (p.ok) {
      m["revision"] = p.revision;
      m["compact_revision"] = p.compact;
      m["applied_index"] = ms[i].applied_index;
      revisions.push_back({Label(ms[i]), std::to_string(p.revision)});
    }
    if (a.ok && at >= 0) {
      m["hash"] = a.hash;
      m["hash_compact_revision"] = a.compact;
      values.push_back(
          {Label(ms[i]), std::to_string(a.hash) + "@compact " + std::to_string(a.compact)});
    } else if (!a.ok) {
      m["error"] = a.error;
      errors.push_back(Label(ms[i]) + ": " + a.error);
    }
    r.evidence["members"][ms[i].endpoint] = m;
  }
  if (at < 0) {
    // The finding is the members' revisions: which ones stayed behind another's compaction.
    r.evidence["revision"] = nullptr;
    Outliers o = FindOutliers(revisions);
    r.evidence["divergent"] = o.members;
    std::string s =
        "no revision every member can hash after waiting " + std::to_string(waited_ms()) + " ms:";
    std::map<uint64_t, std::set<int64_t>> revs_at_index;
    for (size_t i = 0; i < ms.size(); ++i) {
      if (!probe[i].ok) continue;
      s += " " + Label(ms[i]) + " at revision " + std::to_string(probe[i].revision) +
           " compacted at " + std::to_string(probe[i].compact) + ";";
      revs_at_index[ms[i].applied_index].insert(probe[i].revision);
    }
    for (const auto& [index, revs] : revs_at_index) {
      if (revs.size() > 1) {
        // The revisions are listed above; which side is wrong is not for a vote to say.
        s += " members at applied index " + std::to_string(index) +
             " hold different revisions (diverged);";
        r.evidence["diverged_at_applied_index"] = index;
      }
    }
    s.pop_back();
    if (!errors.empty()) s += "; " + Join(errors);
    r.summary = s;
    return r;
  }
  r.evidence["revision"] = at;
  Outliers o = FindOutliers(values);
  r.passed = errors.empty() && o.members.empty() && !values.empty();
  if (r.passed) {
    r.summary = "hash " + o.majority + " on all " + std::to_string(values.size()) +
                " members at revision " + std::to_string(at);
  } else {
    std::string s;
    if (!o.members.empty()) {
      // Each member's hash, not a vote: two members that went wrong the same way outvote the
      // one that did not (the `divergent` evidence still names the odd ones out).
      s = "hashes at revision " + std::to_string(at) + " differ: " + EveryValue(values);
      r.evidence["divergent"] = o.members;
    }
    if (!errors.empty()) s += (s.empty() ? "" : "; ") + Join(errors);
    r.summary = s;
  }
  return r;
}

namespace {

CheckResult CountKeysOnce(const EtcdClient& client, const std::vector<std::string>& prefixes) {
  CheckResult r{"key-count"};
  std::vector<MemberStatus> ms = CollectStatus(client);
  if (Answered(ms).empty()) return NoMemberAnswered(r.name, ms);
  // Converged members are compared at their one revision, exactly; members whose revisions
  // differ (lagging or diverged) are compared at their latest state, since "revision N" then
  // means different things on different members.
  std::set<int64_t> revs;
  for (const MemberStatus* m : Answered(ms)) revs.insert(m->revision);
  int64_t rev = revs.size() == 1 ? *revs.begin() : 0;
  r.evidence["revision"] = rev == 0 ? json("latest per member") : json(rev);
  std::vector<std::string> ranges = {""};
  ranges.insert(ranges.end(), prefixes.begin(), prefixes.end());
  std::vector<std::string> problems;
  for (const std::string& prefix : ranges) {
    std::vector<std::pair<std::string, std::string>> counts;
    std::string label = prefix.empty() ? "(all keys)" : prefix;
    for (size_t i = 0; i < ms.size(); ++i) {
      if (!ms[i].answered) continue;
      pb::RangeRequest req;
      req.set_key(prefix.empty() ? std::string(1, '\0') : prefix);
      req.set_range_end(PrefixEnd(prefix));
      req.set_serializable(true);
      req.set_count_only(true);
      req.set_revision(rev);
      try {
        int64_t n = client.Range(i, req).count();
        r.evidence["counts"][label][ms[i].endpoint] = n;
        counts.push_back({Label(ms[i]), std::to_string(n)});
      } catch (const EtcdError& e) {
        problems.push_back(e.what());
        if (e.code() == grpc::StatusCode::OUT_OF_RANGE) r.evidence["compacted"] = true;
      }
    }
    Outliers o = FindOutliers(counts);
    if (!o.members.empty()) {
      problems.push_back(label + ": counts differ: " + EveryValue(counts));
      r.evidence["divergent"][label] = o.members;
    }
  }
  r.passed = problems.empty();
  if (r.passed) {
    r.summary =
        "every member holds " + r.evidence["counts"]["(all keys)"].begin()->dump() + " keys at " +
        (rev == 0 ? std::string("their latest revision") : "revision " + std::to_string(rev));
    if (!prefixes.empty())
      r.summary += " (and agrees on " + std::to_string(prefixes.size()) + " prefixes)";
  } else {
    r.summary = Join(problems);
  }
  FailIfSilent(ms, &r);
  return r;
}

}  // namespace

CheckResult CheckKeyCounts(const EtcdClient& client, const std::vector<std::string>& prefixes,
                           std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  int retries = 0;
  while (true) {
    CheckResult r = CountKeysOnce(client, prefixes);
    // OUT_OF_RANGE: a compaction passed the revision between Status and the count; the next
    // round picks a revision after it.
    if (r.evidence.value("compacted", false) && std::chrono::steady_clock::now() < deadline) {
      ++retries;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    r.evidence.erase("compacted");
    r.evidence["out_of_range_retries"] = retries;
    return r;
  }
}

CheckResult CheckAlarms(const EtcdClient& client) {
  CheckResult r{"alarms"};
  std::set<std::pair<uint64_t, int>> alarms;
  bool any = false;
  std::vector<std::string> errors;
  for (size_t i = 0; i < client.size(); ++i) {
    try {
      pb::AlarmResponse resp = client.Alarms(i);
      for (const auto& a : resp.alarms()) alarms.insert({a.memberid(), a.alarm()});
      any = true;
    } catch (const EtcdError& e) {
      errors.push_back(e.what());
    }
  }
  r.evidence["alarms"] = json::array();
  for (const auto& [member, alarm] : alarms) {
    r.evidence["alarms"].push_back(
        {{"member_id", HexId(member)},
         {"alarm", pb::AlarmType_Name(static_cast<pb::AlarmType>(alarm))}});
  }
  if (!errors.empty()) r.evidence["errors"] = errors;
  r.passed = any && alarms.empty();
  if (!any) {
    r.summary = "no member answered the alarm list: " + Join(errors);
  } else if (alarms.empty()) {
    r.summary = "no NOSPACE or CORRUPT alarm";
  } else {
    std::string s;
    for (const auto& a : r.evidence["alarms"]) {
      s += (s.empty() ? "" : ", ") + a["alarm"].get<std::string>() + " on member " +
           a["member_id"].get<std::string>();
    }
    r.summary = "alarm raised: " + s;
  }
  return r;
}

CheckResult CheckDbSize(const EtcdClient& client, int64_t quota_bytes, double fail_ratio) {
  CheckResult r{"db-size"};
  std::vector<MemberStatus> ms = CollectStatus(client);
  if (Answered(ms).empty()) return NoMemberAnswered(r.name, ms);
  r.evidence["quota_bytes"] = quota_bytes;
  std::vector<std::string> over;
  int64_t largest = 0;
  for (const MemberStatus* m : Answered(ms)) {
    double ratio = static_cast<double>(m->db_size) / static_cast<double>(quota_bytes);
    r.evidence["members"][m->endpoint] = {{"name", m->name},
                                          {"db_size", m->db_size},
                                          {"db_size_in_use", m->db_size_in_use},
                                          {"quota_ratio", ratio}};
    largest = std::max(largest, m->db_size);
    if (ratio > fail_ratio) over.push_back(Label(*m));
  }
  r.passed = over.empty();
  r.summary = r.passed ? "largest db " + std::to_string(largest) + " bytes, " +
                             std::to_string(100.0 * largest / quota_bytes).substr(0, 5) +
                             "% of the quota"
                       : "db size above " + std::to_string(static_cast<int>(fail_ratio * 100)) +
                             "% of the quota on " + Join(over);
  FailIfSilent(ms, &r);
  return r;
}

std::vector<CheckResult> InspectKeyspace(const EtcdClient& client,
                                         const ClusterCheckOptions& options) {
  CheckResult big{"big-keys"}, per_prefix{"keys-per-prefix"};
  std::vector<MemberStatus> ms = CollectStatus(client);
  size_t member = ms.size();
  for (size_t i = 0; i < ms.size(); ++i) {
    if (ms[i].answered) {
      member = i;
      break;
    }
  }
  if (member == ms.size())
    return {NoMemberAnswered(big.name, ms), NoMemberAnswered(per_prefix.name, ms)};
  // Paged at one revision so the scan sees one consistent keyspace.
  int64_t rev = ms[member].revision;
  std::string key(1, '\0');
  const std::string end(1, '\0');
  size_t scanned = 0;
  bool truncated = false;
  std::vector<std::pair<int64_t, std::string>> top;             // (value size, key), a min-heap
  std::map<std::string, std::pair<int64_t, int64_t>> prefixes;  // prefix -> (keys, bytes)
  try {
    while (true) {
      pb::RangeRequest req;
      req.set_key(key);
      req.set_range_end(end);
      req.set_revision(rev);
      req.set_serializable(true);
      req.set_limit(1000);
      pb::RangeResponse resp = client.Range(member, req);
      for (const auto& kv : resp.kvs()) {
        ++scanned;
        int64_t size = static_cast<int64_t>(kv.value().size());
        top.push_back({size, kv.key()});
        std::push_heap(top.begin(), top.end(), std::greater<>());
        if (top.size() > options.big_keys) {
          std::pop_heap(top.begin(), top.end(), std::greater<>());
          top.pop_back();
        }
        // Prefix: up to and including the Nth '/' after the first character.
        std::string p = kv.key();
        size_t pos = 0;
        for (int d = 0; d < options.prefix_depth; ++d) {
          pos = p.find('/', pos + 1);
          if (pos == std::string::npos) break;
        }
        p = pos == std::string::npos
                ? p.substr(0, p.find('/', 1) == std::string::npos ? p.size() : p.find('/', 1) + 1)
                : p.substr(0, pos + 1);
        auto& [n, bytes] = prefixes[p];
        ++n;
        bytes += size + static_cast<int64_t>(kv.key().size());
      }
      if (!resp.more() || resp.kvs_size() == 0) break;
      if (scanned >= options.max_scan_keys) {
        truncated = true;
        break;
      }
      key = resp.kvs(resp.kvs_size() - 1).key() + std::string(1, '\0');
    }
  } catch (const EtcdError& e) {
    big.summary = per_prefix.summary = std::string("scan failed: ") + e.what();
    return {big, per_prefix};
  }
  std::sort(top.begin(), top.end(), std::greater<>());
  big.evidence = {{"member", ms[member].endpoint},
                  {"revision", rev},
                  {"keys_scanned", scanned},
                  {"truncated", truncated},
                  {"threshold_bytes", options.big_value_bytes},
                  {"largest", json::array()}};
  std::vector<std::string> too_big;
  for (const auto& [size, k] : top) {
    big.evidence["largest"].push_back({{"key", k}, {"value_bytes", size}});
    if (size >= options.big_value_bytes) too_big.push_back(k);
  }
  big.passed = too_big.empty();
  big.summary = big.passed ? (top.empty() ? std::string("keyspace is empty")
                                          : "largest value " + std::to_string(top.front().first) +
                                                " bytes (" + top.front().second + ") among " +
                                                std::to_string(scanned) + " keys")
                           : std::to_string(too_big.size()) + " value(s) of " +
                                 std::to_string(options.big_value_bytes) +
                                 " bytes or more, largest " + top.front().second;
  per_prefix.passed = true;
  per_prefix.evidence = {{"member", ms[member].endpoint},
                         {"revision", rev},
                         {"truncated", truncated},
                         {"prefixes", json::object()}};
  for (const auto& [p, nb] : prefixes) {
    per_prefix.evidence["prefixes"][p] = {{"keys", nb.first}, {"bytes", nb.second}};
  }
  per_prefix.summary = std::to_string(scanned) + " keys under " + std::to_string(prefixes.size()) +
                       " prefixes" + (truncated ? " (scan truncated)" : "");
  return {big, per_prefix};
}

std::vector<CheckResult> RunClusterChecks(const EtcdClient& client,
                                          const ClusterCheckOptions& options) {
  std::vector<CheckResult> out;
  out.push_back(CheckHealth(client));
  out.push_back(CheckConvergence(client, options.convergence_timeout));
  out.push_back(CheckRevisions(client));
  out.push_back(CheckHashKV(client, options.revision_wait));
  out.push_back(CheckKeyCounts(client, options.prefixes, options.revision_wait));
  out.push_back(CheckAlarms(client));
  out.push_back(CheckDbSize(client, options.quota_bytes, options.quota_fail_ratio));
  for (CheckResult& r : InspectKeyspace(client, options)) out.push_back(std::move(r));
  return out;
}

}  // namespace faultline::verify
