#include "controller/verify/history_checks.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include "controller/verify/traffic_checks.h"
#include "controller/verify/watch_checks.h"

namespace faultline::verify {

using nlohmann::json;

namespace {

constexpr size_t kMaxExamples = 10;

// Lease keys vanish with their lease: CheckLeases judges them.
bool IsAckedWrite(const Op& op) {
  return op.outcome == Outcome::kOk && op.lease == 0 &&
         (op.type == OpType::kPut || (op.type == OpType::kCas && op.succeeded));
}

}  // namespace

json OpBrief(const Op& op) {
  json j = {{"id", op.id}, {"client", op.client}, {"type", ToString(op.type)}, {"key", op.key}};
  if (!op.endpoint.empty()) j["endpoint"] = op.endpoint;
  if (op.outcome == Outcome::kOk) j["revision"] = op.revision;
  return j;
}

CheckResult CheckLostWrites(const History& h) {
  CheckResult r{"lost-writes"};
  struct Write {
    int64_t ret;
    int64_t rev;
    const Op* op;
  };
  struct Read {
    int64_t invoke;
    int64_t ret;
    bool found;
    int64_t mod_rev;
    const Op* op;  // null for the final read
    std::string value;
  };
  std::unordered_map<std::string, std::vector<Write>> writes;
  std::unordered_map<std::string, std::vector<Read>> reads;
  std::unordered_map<std::string, std::vector<const Op*>> deletes;
  std::unordered_map<std::string, const Op*> acked_by_value;
  size_t acked = 0;
  for (const Op& op : h.ops) {
    if (IsAckedWrite(op)) {
      writes[op.key].push_back({op.return_ns, op.revision, &op});
      acked_by_value[op.value] = &op;
      ++acked;
    } else if (op.type == OpType::kGet && op.outcome == Outcome::kOk && !op.serializable &&
               op.lease == 0) {
      reads[op.key].push_back(
          {op.invoke_ns, op.return_ns, op.found, op.read_mod_revision, &op, op.read_value});
    } else if (op.type == OpType::kDelete && op.outcome != Outcome::kFailed) {
      deletes[op.key].push_back(&op);
    }
  }
  constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();
  for (const History::Final& f : h.final_reads) {
    reads[f.key].push_back({kEnd, kEnd, f.present, f.mod_revision, nullptr, f.value});
  }
  json lost = json::array(), mismatched = json::array();
  size_t lost_count = 0, mismatch_count = 0, reads_checked = 0;
  for (auto& [key, ws] : writes) {
    std::sort(ws.begin(), ws.end(), [](const Write& a, const Write& b) { return a.ret < b.ret; });
    // best[i]: the highest-revision write among the first i+1 to return.
    std::vector<size_t> best(ws.size());
    for (size_t i = 0; i < ws.size(); ++i) {
      best[i] = (i > 0 && ws[best[i - 1]].rev >= ws[i].rev) ? best[i - 1] : i;
    }
    for (const Read& rd : reads[key]) {
      auto it = std::lower_bound(ws.begin(), ws.end(), rd.invoke,
                                 [](const Write& w, int64_t t) { return w.ret < t; });
      if (it == ws.begin()) continue;
      ++reads_checked;
      const Write& w = ws[best[(it - ws.begin()) - 1]];
      bool ok;
      if (rd.found) {
        ok = rd.mod_rev >= w.rev;
      } else {
        // Absent is fine only if a delete could have removed it after the write.
        ok = false;
        for (const Op* d : deletes[key]) {
          bool after = d->outcome == Outcome::kUnknown
                           ? d->invoke_ns < rd.ret
                           : (d->deleted > 0 && d->revision > w.rev && d->invoke_ns < rd.ret);
          if (after) {
            ok = true;
            break;
          }
        }
      }
      if (ok) continue;
      if (lost_count++ < kMaxExamples) {
        json e = {{"key", key},
                  {"write", OpBrief(*w.op)},
                  {"value", w.op->value},
                  {"read", rd.op ? OpBrief(*rd.op) : json("final read")},
                  {"read_found", rd.found}};
        if (rd.found) e["read_mod_revision"] = rd.mod_rev;
        lost.push_back(e);
      }
    }
  }
  for (const auto& [key, rs] : reads) {
    for (const Read& rd : rs) {
      if (!rd.found) continue;
      auto it = acked_by_value.find(rd.value);
      if (it == acked_by_value.end() || it->second->key != key) continue;
      if (it->second->revision == rd.mod_rev) continue;
      if (mismatch_count++ < kMaxExamples) {
        mismatched.push_back({{"key", key},
                              {"value", rd.value},
                              {"acknowledged_revision", it->second->revision},
                              {"read_mod_revision", rd.mod_rev},
                              {"read", rd.op ? OpBrief(*rd.op) : json("final read")}});
      }
    }
  }
  if (acked == 0 || (reads_checked == 0 && mismatch_count == 0)) {
    CheckResult none = NoEvidence(
        r.name, acked == 0 ? "no acknowledged write in the history"
                           : std::to_string(acked) + " acknowledged write(s) but no linearizable " +
                                 "read or final read after any of them");
    none.evidence = {{"acknowledged_writes", acked}, {"reads_checked", reads_checked}};
    return none;
  }
  r.passed = lost_count == 0 && mismatch_count == 0;
  r.evidence = {{"acknowledged_writes", acked}, {"reads_checked", reads_checked},
                {"lost", lost_count},           {"revision_mismatch", mismatch_count},
                {"lost_examples", lost},        {"mismatch_examples", mismatched}};
  r.summary = r.passed ? std::to_string(acked) + " acknowledged writes, none lost (" +
                             std::to_string(reads_checked) + " later reads checked)"
                       : std::to_string(lost_count) + " acknowledged write(s) not visible to a " +
                             "later read, " + std::to_string(mismatch_count) +
                             " read(s) saw an acknowledged value at another revision";
  return r;
}

CheckResult CheckRevisionMonotonic(const History& h) {
  CheckResult r{"revision-monotonic"};
  std::map<int, std::vector<const Op*>> by_client;
  for (const Op& op : h.ops) {
    if (op.outcome == Outcome::kOk) by_client[op.client].push_back(&op);
  }
  if (by_client.empty()) return NoEvidence(r.name, "no operation was answered");
  json bad = json::array();
  size_t violations = 0;
  json per_client = json::object();
  for (auto& [client, ops] : by_client) {
    std::sort(ops.begin(), ops.end(),
              [](const Op* a, const Op* b) { return a->invoke_ns < b->invoke_ns; });
    int64_t last = 0;
    const Op* last_op = nullptr;
    std::map<std::string, std::pair<int64_t, const Op*>> last_at;
    for (const Op* op : ops) {
      auto& [member_last, member_op] = last_at[op->endpoint];
      bool serial = op->type == OpType::kGet && op->serializable;
      int64_t floor = serial ? member_last : last;
      const Op* prev = serial ? member_op : last_op;
      if (op->revision < floor) {
        if (violations++ < kMaxExamples) {
          bad.push_back({{"client", client}, {"previous", OpBrief(*prev)}, {"op", OpBrief(*op)}});
        }
      }
      if (!serial && op->revision > last) {
        last = op->revision;
        last_op = op;
      }
      if (op->revision > member_last) {
        member_last = op->revision;
        member_op = op;
      }
    }
    per_client[std::to_string(client)] = {{"ops", ops.size()}, {"last_revision", last}};
  }
  r.passed = violations == 0;
  r.evidence = {{"clients", per_client}, {"violations", violations}, {"examples", bad}};
  r.summary = r.passed ? "revisions never went backwards for " + std::to_string(by_client.size()) +
                             " client(s)"
                       : std::to_string(violations) + " op(s) saw a lower revision than an " +
                             "earlier op of the same client";
  return r;
}

CheckResult CheckSerializableReads(const History& h) {
  CheckResult r{"serializable-reads"};
  constexpr int64_t kEndOfTime = std::numeric_limits<int64_t>::max();
  std::vector<const Op*> reads;
  // Per key: every write by value (the workload's values are unique), and the acknowledged
  // changes by revision (true: the key exists after it).
  std::unordered_map<std::string, std::unordered_map<std::string, const Op*>> writer;
  std::unordered_map<std::string, std::map<int64_t, std::pair<bool, const Op*>>> changes;
  std::unordered_map<std::string, std::vector<const Op*>> unknown_deletes;
  // Linearizable answers by invocation: the revision committed at time t is at most what any of
  // them invoked after t saw.
  std::vector<std::pair<int64_t, int64_t>> lin;  // (invoke_ns, revision)
  for (const Op& op : h.ops) {
    if (op.type == OpType::kGet) {
      if (op.outcome != Outcome::kOk) continue;
      if (op.serializable) {
        reads.push_back(&op);
      } else {
        lin.push_back({op.invoke_ns, op.revision});
      }
      continue;
    }
    if (op.outcome == Outcome::kFailed) continue;
    if (op.type == OpType::kPut || op.type == OpType::kCas) writer[op.key][op.value] = &op;
    if (op.type == OpType::kDelete && op.outcome == Outcome::kUnknown) {
      unknown_deletes[op.key].push_back(&op);
    }
    if (op.outcome != Outcome::kOk) continue;
    lin.push_back({op.invoke_ns, op.revision});
    if (IsAckedWrite(op)) changes[op.key][op.revision] = {true, &op};
    if (op.type == OpType::kDelete && op.deleted > 0) changes[op.key][op.revision] = {false, &op};
  }
  if (reads.empty()) return NoEvidence(r.name, "no serializable read in the history");
  std::sort(lin.begin(), lin.end());
  // ceiling[i]: the lowest revision answered by the linearizable ops from lin[i] on.
  std::vector<int64_t> ceiling(lin.size());
  for (size_t i = lin.size(); i-- > 0;) {
    ceiling[i] = i + 1 < lin.size() ? std::min(lin[i].second, ceiling[i + 1]) : lin[i].second;
  }
  std::sort(reads.begin(), reads.end(),
            [](const Op* a, const Op* b) { return a->invoke_ns < b->invoke_ns; });
  json examples = json::array();
  std::map<std::string, size_t> by_problem;
  auto finding = [&](const std::string& problem, const Op& read, json detail) {
    ++by_problem[problem];
    if (examples.size() >= kMaxExamples) return;
    json e = {{"problem", problem}, {"read", OpBrief(read)}};
    e["read"]["found"] = read.found;
    if (read.found) {
      e["read"]["value"] = read.read_value;
      e["read"]["mod_revision"] = read.read_mod_revision;
    }
    for (auto& [k, v] : detail.items()) e[k] = v;
    examples.push_back(e);
  };
  // (client, member, key) -> the last serializable read there.
  std::map<std::tuple<int, std::string, std::string>, const Op*> last;
  for (const Op* rd : reads) {
    const Op& op = *rd;
    // 1. A value some write of the key produced, invoked before the read returned.
    if (op.found) {
      auto ks = writer.find(op.key);
      const Op* w = nullptr;
      if (ks != writer.end()) {
        auto it = ks->second.find(op.read_value);
        if (it != ks->second.end()) w = it->second;
      }
      if (w == nullptr) {
        finding("value no write produced", op, json::object());
      } else if (w->invoke_ns >= op.return_ns) {
        finding("value written only after the read returned", op, {{"write", OpBrief(*w)}});
      } else if (IsAckedWrite(*w) && w->revision != op.read_mod_revision) {
        finding("value at another mod revision than its write", op, {{"write", OpBrief(*w)}});
      }
      if (op.read_mod_revision > op.revision) {
        finding("mod revision after the read's own revision", op, json::object());
      }
    }
    // 2. No later than what was committed when it returned.
    size_t after =
        std::upper_bound(lin.begin(), lin.end(), std::make_pair(op.return_ns, kEndOfTime)) -
        lin.begin();
    if (after < lin.size() && op.revision > ceiling[after]) {
      finding("revision not yet committed when the read returned", op,
              {{"committed_at_most", ceiling[after]}});
    }
    // 3. The key's state at the read's own revision.
    auto cs = changes.find(op.key);
    if (cs != changes.end()) {
      auto it = cs->second.upper_bound(op.revision);
      if (it != cs->second.begin()) {
        --it;
        const auto& [rev, change] = *it;
        const auto& [present, w] = change;
        if (op.found && op.read_mod_revision < rev) {
          finding("stale at its own revision", op,
                  {{"change", OpBrief(*w)},
                   {"explanation",
                    "the key changed at revision " + std::to_string(rev) +
                        ", after the mod revision read and not after the read's revision"}});
        } else if (!op.found && present) {
          // Absent at its revision despite a write there: only a delete of unknown outcome
          // (revision unknown) invoked before the read returned can explain it.
          bool explained = false;
          for (const Op* d : unknown_deletes[op.key]) {
            explained = explained || d->invoke_ns < op.return_ns;
          }
          if (!explained) {
            finding("absent at a revision where the key exists", op, {{"change", OpBrief(*w)}});
          }
        }
      }
    }
    // 4. Never going back on one client and member.
    auto& prev = last[{op.client, op.endpoint, op.key}];
    if (prev != nullptr && prev->found && op.found &&
        op.read_mod_revision < prev->read_mod_revision) {
      finding(
          "went back on its client and member", op,
          {{"earlier_read", OpBrief(*prev)}, {"earlier_mod_revision", prev->read_mod_revision}});
    }
    prev = rd;
  }
  size_t violations = 0;
  json problems = json::object();
  for (const auto& [p, n] : by_problem) {
    violations += n;
    problems[p] = n;
  }
  r.passed = violations == 0;
  r.evidence = {{"serializable_reads", reads.size()},
                {"violations", violations},
                {"problems", problems},
                {"examples", examples}};
  if (r.passed) {
    r.summary = std::to_string(reads.size()) +
                " serializable read(s), each a state its member could have had";
  } else {
    const json& first = examples.front();
    r.summary = std::to_string(violations) + " serializable read(s) showed a state no member " +
                "could have had; first: op " + first["read"]["id"].dump() + " (" +
                first["problem"].get<std::string>() + ", key " +
                first["read"]["key"].get<std::string>() + ")";
  }
  return r;
}

CheckResult CheckWatches(const History& h) {
  CheckResult r{"watch"};
  std::map<std::string, std::vector<const WatchEvent*>> by_watcher;
  for (const WatchEvent& e : h.watch_events) by_watcher[e.watcher].push_back(&e);
  if (by_watcher.empty()) return NoEvidence(r.name, "no watch event recorded");
  // Every change any watcher saw, plus every acknowledged change of the workload.
  std::set<std::pair<int64_t, std::string>> all;
  for (const WatchEvent& e : h.watch_events) all.insert({e.revision, e.key});
  for (const Op& op : h.ops) {
    if (IsAckedWrite(op) ||
        (op.type == OpType::kDelete && op.outcome == Outcome::kOk && op.deleted > 0)) {
      all.insert({op.revision, op.key});
    }
  }
  json per = json::object();
  bool passed = true;
  size_t total_bad = 0;
  for (auto& [watcher, events] : by_watcher) {
    size_t out_of_order = 0, duplicates = 0, gaps = 0;
    json examples = json::array();
    std::set<std::pair<int64_t, std::string>> seen;
    int64_t prev = 0;
    for (const WatchEvent* e : events) {
      if (e->revision < prev) {
        ++out_of_order;
        if (examples.size() < kMaxExamples) {
          examples.push_back({{"problem", "out of order"},
                              {"revision", e->revision},
                              {"after", prev},
                              {"key", e->key}});
        }
      }
      prev = std::max(prev, e->revision);
      if (!seen.insert({e->revision, e->key}).second) {
        ++duplicates;
        if (examples.size() < kMaxExamples) {
          examples.push_back(
              {{"problem", "duplicate"}, {"revision", e->revision}, {"key", e->key}});
        }
      }
    }
    int64_t first = seen.empty() ? 0 : seen.begin()->first;
    int64_t last = seen.empty() ? 0 : seen.rbegin()->first;
    // Watchers with a watch_open record watch a range: changes outside it are not theirs.
    const WatchOpen* open = nullptr;
    for (const WatchOpen& o : h.watch_opens) {
      if (o.watcher == watcher) {
        open = &o;
        break;
      }
    }
    auto in_range = [&](const std::string& key) {
      if (!open) return true;
      if (key < open->key) return false;
      return open->range_end.empty()
                 ? key == open->key
                 : (open->range_end == std::string(1, '\0') || key < open->range_end);
    };
    for (auto it = all.lower_bound({first, ""}); it != all.end() && it->first <= last; ++it) {
      if (seen.count(*it) || !in_range(it->second)) continue;
      ++gaps;
      if (examples.size() < kMaxExamples) {
        examples.push_back({{"problem", "missing"}, {"revision", it->first}, {"key", it->second}});
      }
    }
    bool ok = out_of_order == 0 && duplicates == 0 && gaps == 0;
    passed = passed && ok;
    total_bad += out_of_order + duplicates + gaps;
    per[watcher] = {{"events", events.size()},  {"first_revision", first},
                    {"last_revision", last},    {"out_of_order", out_of_order},
                    {"duplicates", duplicates}, {"missing", gaps},
                    {"examples", examples}};
  }
  r.passed = passed;
  r.evidence = {{"watchers", per}};
  r.summary =
      passed ? std::to_string(by_watcher.size()) + " watcher(s): ordered, no duplicates, no gaps"
             : std::to_string(total_bad) + " watch problem(s) (see evidence per watcher)";
  return r;
}

CheckResult CheckLinearizable(const History& h, const LinearizabilityOptions& options) {
  CheckResult r{"linearizability"};
  LinearizabilityResult lr = CheckLinearizability(h, options);
  if (lr.ops_checked == 0) {
    CheckResult none =
        NoEvidence(r.name, "no operation to linearize (" + std::to_string(lr.ops_skipped) +
                               " failed, serializable or unanswered read(s))");
    none.evidence = {{"ops_checked", 0}, {"ops_skipped", lr.ops_skipped}};
    return none;
  }
  r.passed = lr.ok();
  r.summary = lr.Summary();
  json failures = json::array();
  for (const KeyFailure& f : lr.failures) {
    json window = json::array();
    for (const Op& op : f.window) {
      json j = OpBrief(op);
      j["outcome"] = ToString(op.outcome);
      j["invoke_ns"] = op.invoke_ns;
      j["return_ns"] = op.return_ns;
      if (op.type == OpType::kPut || op.type == OpType::kCas) j["value"] = op.value;
      if (op.type == OpType::kGet && op.outcome == Outcome::kOk) {
        j["found"] = op.found;
        j["read_value"] = op.read_value;
        j["read_mod_revision"] = op.read_mod_revision;
      }
      if (op.type == OpType::kCas) {
        j["expect"] = op.expect_absent ? json(nullptr) : json(op.expect_value);
        if (op.outcome == Outcome::kOk) j["succeeded"] = op.succeeded;
      }
      if (op.type == OpType::kDelete && op.outcome == Outcome::kOk) j["deleted"] = op.deleted;
      window.push_back(j);
    }
    failures.push_back({{"key", f.key},
                        {"key_ops", f.key_ops},
                        {"segment", f.segment},
                        {"segments", f.segments},
                        {"prefix_ops", f.prefix_ops},
                        {"failing_op", f.failing_op},
                        {"window_start_ns", f.window_start_ns},
                        {"window_end_ns", f.window_end_ns},
                        {"start_state", f.start_state},
                        {"context_ops", f.context_ops},
                        {"linearized", f.linearized},
                        {"stuck_state", f.stuck_state},
                        {"explanation", f.explanation},
                        {"window", window},
                        {"text", RenderFailure(f)}});
  }
  const char* verdict = lr.verdict == LinearizabilityResult::Verdict::kLinearizable ? "linearizable"
                        : lr.verdict == LinearizabilityResult::Verdict::kNotLinearizable
                            ? "not-linearizable"
                            : "inconclusive";
  r.evidence = {{"verdict", verdict},
                {"keys", lr.keys},
                {"ops_checked", lr.ops_checked},
                {"ops_skipped", lr.ops_skipped},
                {"search_steps", lr.steps},
                {"memo_entries", lr.memo_entries},
                {"failures", failures},
                {"inconclusive_keys", lr.inconclusive_keys},
                {"unknown_outcomes",
                 {{"ops", lr.unknown_ops},
                  {"proven_by_read", lr.unknown_proven_by_read},
                  {"proven_by_watch", lr.unknown_proven_by_watch},
                  {"proven_by_final_read", lr.unknown_proven_by_final},
                  {"no_effect", lr.unknown_no_effect},
                  {"still_unknown", lr.unknown_unresolved}}}};
  return r;
}

std::vector<CheckResult> CheckHistory(const History& h, const LinearizabilityOptions& options) {
  std::vector<CheckResult> out = {CheckLinearizable(h, options), CheckLostWrites(h),
                                  CheckRevisionMonotonic(h), CheckSerializableReads(h),
                                  CheckWatches(h)};
  // Each watch guarantee on its own, where watches were recorded.
  if (!h.watch_events.empty() || !h.watch_opens.empty()) {
    for (CheckResult& r : CheckWatchGuarantees(h)) out.push_back(std::move(r));
  }
  bool leases = false, past = !h.lists.empty();
  for (const AdminOp& a : h.admin) leases = leases || a.kind == AdminOp::Kind::kLeaseGrant;
  for (const Op& op : h.ops) past = past || op.past_revision > 0;
  if (leases) out.push_back(CheckLeases(h));
  if (past) out.push_back(CheckPastReads(h));
  return out;
}

}  // namespace faultline::verify
