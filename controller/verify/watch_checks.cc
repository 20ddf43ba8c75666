#include "controller/verify/watch_checks.h"

#include <algorithm>
#include <map>
#include <string_view>
#include <unordered_map>

#include "controller/verify/proven.h"

namespace faultline::verify {

using nlohmann::json;

namespace {

constexpr size_t kMaxExamples = 10;

struct Watcher {
  std::string name;
  std::vector<const WatchOpen*> opens;  // by stream
  std::vector<const WatchEvent*> events;
  std::vector<const WatchProgress*> progress;
  bool prev_kv = false;
  // The watched range; without an open record, everything.
  std::string key, range_end;
  bool ranged = false;
  std::string Member() const {
    return opens.empty() ? (events.empty() ? name : events[0]->watcher) : opens[0]->endpoint;
  }
  bool InRange(std::string_view k) const {
    if (!ranged) return true;
    if (k < std::string_view(key)) return false;
    if (range_end.empty()) return k == key;
    if (range_end == std::string(1, '\0')) return true;
    return k < std::string_view(range_end);
  }
};

class Findings {
 public:
  explicit Findings(const char* name) : name_(name) {}
  void Add(const Watcher& w, int64_t revision, std::string message, json events) {
    if (count_++ == 0) first_ = message;
    if (examples_.size() < kMaxExamples) {
      examples_.push_back({{"guarantee", name_},
                           {"watcher", w.name},
                           {"member", w.Member()},
                           {"revision", revision},
                           {"message", std::move(message)},
                           {"events", std::move(events)}});
    }
    per_watcher_[w.name] = per_watcher_.value(w.name, 0) + 1;
  }
  CheckResult Result(const std::string& ok_summary, json extra) const {
    CheckResult r{std::string("watch-") + name_};
    r.passed = count_ == 0;
    r.summary = r.passed ? ok_summary : std::to_string(count_) + " finding(s); first: " + first_;
    r.evidence = std::move(extra);
    r.evidence["findings"] = count_;
    r.evidence["examples"] = examples_;
    r.evidence["findings_per_watcher"] = per_watcher_;
    return r;
  }

 private:
  const char* name_;
  size_t count_ = 0;
  std::string first_;
  json examples_ = json::array();
  json per_watcher_ = json::object();
};

json EventJson(const WatchEvent& e) {
  json j = {{"type", e.is_delete ? "DELETE" : "PUT"}, {"key", e.key}, {"revision", e.revision}};
  if (!e.is_delete) j["value"] = e.value;
  if (e.stream >= 0) j["stream"] = e.stream;
  if (e.response >= 0) j["response"] = e.response;
  if (e.create_revision != 0) j["create_revision"] = e.create_revision;
  if (e.has_prev) j["prev_kv"] = {{"value", e.prev_value}, {"mod_revision", e.prev_mod_revision}};
  return j;
}

json ChangeJson(const ProvenChanges::Change& c, const ProvenChanges& p) {
  json j = {{"type", c.del ? "DELETE" : "PUT"},
            {"key", p.Key(c.key)},
            {"revision", c.rev},
            {"proof", ProvenChanges::Proof(c)}};
  if (!c.del) j["value"] = c.value;
  return j;
}

using Change = ProvenChanges::Change;
// A watcher's events as (revision, key) codes, sorted: equal neighbours are one event twice, and
// a proven change is delivered when its code is among them.
using EventCodes = std::vector<std::pair<uint64_t, const WatchEvent*>>;

// Watchers by name, in a stable order, each with its records in the order it received them.
std::map<std::string, Watcher> GroupWatchers(const History& h) {
  std::map<std::string, Watcher> watchers;
  for (const WatchOpen& o : h.watch_opens) {
    Watcher& w = watchers[o.watcher];
    w.name = o.watcher;
    w.opens.push_back(&o);
  }
  for (const WatchEvent& e : h.watch_events) {
    Watcher& w = watchers[e.watcher];
    w.name = e.watcher;
    w.events.push_back(&e);
  }
  for (const WatchProgress& p : h.watch_progress) {
    Watcher& w = watchers[p.watcher];
    w.name = p.watcher;
    w.progress.push_back(&p);
  }
  for (auto& [name, w] : watchers) {
    std::stable_sort(w.opens.begin(), w.opens.end(),
                     [](const WatchOpen* a, const WatchOpen* b) { return a->stream < b->stream; });
    // Receive order is the order of responses; events of one response keep their file order.
    std::stable_sort(
        w.events.begin(), w.events.end(),
        [](const WatchEvent* a, const WatchEvent* b) { return a->response < b->response; });
    std::stable_sort(
        w.progress.begin(), w.progress.end(),
        [](const WatchProgress* a, const WatchProgress* b) { return a->response < b->response; });
    if (!w.opens.empty()) {
      w.ranged = true;
      w.key = w.opens[0]->key;
      w.range_end = w.opens[0]->range_end;
      for (const WatchOpen* o : w.opens) w.prev_kv = w.prev_kv || o->prev_kv;
    } else {
      for (const WatchEvent* e : w.events) w.prev_kv = w.prev_kv || e->has_prev;
    }
  }
  return watchers;
}

// `proven` interns keys (Id), hence not const.
EventCodes CodesOf(const Watcher& w, ProvenChanges& proven) {
  EventCodes got;
  got.reserve(w.events.size());
  for (const WatchEvent* e : w.events)
    got.push_back({ProvenChanges::Code(e->revision, proven.Id(e->key)), e});
  std::stable_sort(got.begin(), got.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return got;
}

void CheckOrdered(const Watcher& w, const std::string& who, Findings& ordered) {
  int64_t last = 0;
  for (const WatchEvent* e : w.events) {
    if (e->revision < last) {
      ordered.Add(w, e->revision,
                  who + " received " + DescribeChange(e->is_delete, e->key, e->revision, e->value) +
                      " after an event at revision " + std::to_string(last),
                  json::array({EventJson(*e)}));
    }
    last = std::max(last, e->revision);
  }
}

void CheckUnique(const Watcher& w, const std::string& who, const EventCodes& got,
                 Findings& unique) {
  for (size_t i = 1; i < got.size(); ++i) {
    if (got[i].first != got[i - 1].first) continue;
    const WatchEvent* e = got[i].second;
    unique.Add(
        w, e->revision,
        who + " received " + DescribeChange(e->is_delete, e->key, e->revision, e->value) + " twice",
        json::array({EventJson(*got[i - 1].second), EventJson(*e)}));
  }
}

// A response may not start at the revision the previous one ended with.
void CheckAtomic(const Watcher& w, const std::string& who, Findings& atomic) {
  int64_t prev_end = 0;
  int64_t prev_response = -1;
  const WatchEvent* prev_last = nullptr;
  for (size_t i = 0; i < w.events.size(); ++i) {
    const WatchEvent* e = w.events[i];
    if (e->response < 0) break;  // not recorded
    if (e->response == prev_response) continue;
    // A new stream starts afresh: what it repeats is unique's business.
    if (prev_last && prev_last->stream != e->stream) prev_last = nullptr;
    if (prev_last && e->revision == prev_end) {
      atomic.Add(w, e->revision,
                 who + ": revision " + std::to_string(e->revision) + " was split over responses " +
                     std::to_string(prev_response) + " and " + std::to_string(e->response),
                 json::array({EventJson(*prev_last), EventJson(*e)}));
    }
    // The last event of this response.
    size_t j = i;
    while (j + 1 < w.events.size() && w.events[j + 1]->response == e->response) ++j;
    prev_last = w.events[j];
    prev_end = prev_last->revision;
    prev_response = e->response;
  }
}

// Per stream: nothing below its start, and the first change at or after it comes first.
void CheckResumable(const Watcher& w, const std::string& who, const ProvenChanges& proven,
                    Findings& resumable) {
  const auto& truth = proven.changes();
  for (const WatchOpen* o : w.opens) {
    const int64_t s = o->start_revision;
    if (s <= 0) continue;
    const WatchEvent* first = nullptr;
    for (const WatchEvent* e : w.events) {
      if (e->stream != o->stream) continue;
      if (!first) first = e;
      if (e->revision < s) {
        resumable.Add(w, e->revision,
                      who + " stream " + std::to_string(o->stream) + " opened at revision " +
                          std::to_string(s) + " received " +
                          DescribeChange(e->is_delete, e->key, e->revision, e->value),
                      json::array({EventJson(*e)}));
      }
    }
    for (const WatchProgress* p : w.progress) {
      if (p->stream == o->stream && p->revision < s - 1) {
        resumable.Add(w, p->revision,
                      who + " stream " + std::to_string(o->stream) + " opened at revision " +
                          std::to_string(s) + " got a progress notification at revision " +
                          std::to_string(p->revision) +
                          " (it promises nothing about revisions it was not asked for)",
                      json::array());
      }
    }
    if (first && first->revision >= s) {
      for (size_t i = proven.LowerBound(s); i < truth.size(); ++i) {
        const Change& t = truth[i];
        if (t.rev >= first->revision) break;
        if (!w.InRange(proven.Key(t.key))) continue;
        resumable.Add(
            w, t.rev,
            who + " stream " + std::to_string(o->stream) + " opened at revision " +
                std::to_string(s) + " began with " +
                DescribeChange(first->is_delete, first->key, first->revision, first->value) +
                ", skipping " + DescribeChange(t.del, proven.Key(t.key), t.rev, t.value) + " (" +
                ProvenChanges::Proof(t) + ")",
            json::array({EventJson(*first), ChangeJson(t, proven)}));
        break;
      }
    }
  }
}

// Events and progress notifications in response order: a notification at P promises no later
// event at or below P, and notifications never go back.
void CheckBookmarkable(const Watcher& w, const std::string& who, Findings& bookmarkable) {
  int64_t last_progress = 0, last_event = 0;
  size_t ei = 0, pi = 0;
  while (ei < w.events.size() || pi < w.progress.size()) {
    bool take_event = pi == w.progress.size() ||
                      (ei < w.events.size() && w.events[ei]->response < w.progress[pi]->response);
    if (take_event) {
      const WatchEvent* e = w.events[ei++];
      if (e->revision <= last_progress) {
        bookmarkable.Add(
            w, e->revision,
            who + " received " + DescribeChange(e->is_delete, e->key, e->revision, e->value) +
                " after a progress notification at revision " + std::to_string(last_progress),
            json::array({EventJson(*e)}));
      }
      last_event = std::max(last_event, e->revision);
    } else {
      const WatchProgress* p = w.progress[pi++];
      if (p->revision < last_event || p->revision < last_progress) {
        bookmarkable.Add(w, p->revision,
                         who + " got a progress notification at revision " +
                             std::to_string(p->revision) + " after " +
                             (p->revision < last_event ? "an event" : "a notification") +
                             " at revision " + std::to_string(std::max(last_event, last_progress)),
                         json::array());
      }
      last_progress = std::max(last_progress, p->revision);
    }
  }
}

// The highest revision the watcher is known to have been brought to.
int64_t Reached(const Watcher& w) {
  int64_t reached = 0;
  for (const WatchEvent* e : w.events) reached = std::max(reached, e->revision);
  for (const WatchProgress* p : w.progress) reached = std::max(reached, p->revision);
  return reached;
}

// The revision the watcher owes every change from: its first stream's start, skipping a stream
// the server cancelled because its start was compacted (it delivered nothing it owed).
int64_t FirstOwed(const Watcher& w) {
  for (const WatchOpen* o : w.opens) {
    if (o->end == "compacted" && o->start_revision > 0) {
      bool delivered = false;
      for (const WatchEvent* e : w.events) delivered = delivered || e->stream == o->stream;
      if (!delivered) continue;
    }
    return o->start_revision;
  }
  return w.opens.empty() && !w.events.empty() ? w.events.front()->revision : 0;
}

// Every proven change in [first_rev, reached] and in range was delivered, and nothing outside
// the range was. Returns how many were missing.
size_t CheckReliable(const Watcher& w, const std::string& who, const ProvenChanges& proven,
                     const EventCodes& got, int64_t first_rev, int64_t reached,
                     Findings& reliable) {
  const auto& truth = proven.changes();
  size_t missing = 0;
  if (first_rev > 0 && reached >= first_rev) {
    std::vector<char> in_range(proven.keys().size());
    for (size_t k = 0; k < in_range.size(); ++k) in_range[k] = w.InRange(proven.keys()[k]);
    size_t gi = 0;
    for (size_t i = proven.LowerBound(first_rev); i < truth.size(); ++i) {
      const Change& t = truth[i];
      if (t.rev > reached) break;
      if (!in_range[t.key]) continue;
      const uint64_t code = proven.CodeAt(i);
      while (gi < got.size() && got[gi].first < code) ++gi;
      if (gi < got.size() && got[gi].first == code) continue;
      ++missing;
      reliable.Add(w, t.rev,
                   who + " missed " + DescribeChange(t.del, proven.Key(t.key), t.rev, t.value) +
                       " (" + ProvenChanges::Proof(t) + "); it watched from revision " +
                       std::to_string(first_rev) + " and reached " + std::to_string(reached),
                   json::array({ChangeJson(t, proven)}));
    }
  }
  for (const WatchEvent* e : w.events) {
    if (!w.InRange(e->key)) {
      reliable.Add(w, e->revision,
                   who + " received " +
                       DescribeChange(e->is_delete, e->key, e->revision, e->value) +
                       ", outside the range it watches",
                   json::array({EventJson(*e)}));
    }
  }
  return missing;
}

// prev_kv and IsCreate against the key's previous proven change.
void CheckPrevKvAndIsCreate(const Watcher& w, const std::string& who, ProvenChanges& proven,
                            Findings& prev_kv, Findings& is_create) {
  for (const WatchEvent* e : w.events) {
    const Change* before = proven.AtOrBefore(proven.Id(e->key), e->revision - 1);
    const bool existed = before && !before->del;
    if (w.prev_kv) {
      if (e->has_prev && !existed) {
        prev_kv.Add(w, e->revision,
                    who + ": " + DescribeChange(e->is_delete, e->key, e->revision, e->value) +
                        " came with prev_kv \"" + e->prev_value + "\" @" +
                        std::to_string(e->prev_mod_revision) + " but the key did not exist " +
                        "before it" + (before ? " (" + ProvenChanges::Proof(*before) + ")" : ""),
                    json::array({EventJson(*e)}));
      } else if (e->has_prev &&
                 (e->prev_mod_revision != before->rev || e->prev_value != before->value)) {
        prev_kv.Add(w, e->revision,
                    who + ": " + DescribeChange(e->is_delete, e->key, e->revision, e->value) +
                        " came with prev_kv \"" + e->prev_value + "\" @" +
                        std::to_string(e->prev_mod_revision) + " but the previous state was " +
                        DescribeChange(false, e->key, before->rev, before->value) + " (" +
                        ProvenChanges::Proof(*before) + ")",
                    json::array({EventJson(*e), ChangeJson(*before, proven)}));
      } else if (!e->has_prev && existed && proven.max_compact() < e->revision) {
        prev_kv.Add(w, e->revision,
                    who + ": " + DescribeChange(e->is_delete, e->key, e->revision, e->value) +
                        " came without prev_kv although the key held " +
                        DescribeChange(false, e->key, before->rev, before->value) +
                        " and no compaction reached revision " + std::to_string(e->revision),
                    json::array({EventJson(*e), ChangeJson(*before, proven)}));
      }
    }
    if (!e->is_delete && e->create_revision != 0 && e->IsCreate() == existed) {
      is_create.Add(w, e->revision,
                    who + ": " + DescribeChange(false, e->key, e->revision, e->value) + " has " +
                        "create_revision " + std::to_string(e->create_revision) +
                        (existed ? " (a create) but the key held " +
                                       DescribeChange(false, e->key, before->rev, before->value)
                                 : " (an update) but the key did not exist before it"),
                    json::array({EventJson(*e)}));
    }
  }
}

}  // namespace

const std::vector<const char*>& WatchGuaranteeNames() {
  static const std::vector<const char*> names = {"ordered",   "unique",       "atomic",
                                                 "resumable", "bookmarkable", "reliable",
                                                 "prev-kv",   "is-create"};
  return names;
}

std::vector<CheckResult> CheckWatchGuarantees(const History& h) {
  Findings ordered("ordered"), unique("unique"), atomic("atomic"), resumable("resumable"),
      bookmarkable("bookmarkable"), reliable("reliable"), prev_kv("prev-kv"),
      is_create("is-create");

  const std::map<std::string, Watcher> watchers = GroupWatchers(h);
  if (watchers.empty()) {
    std::vector<CheckResult> out;
    for (const char* g : WatchGuaranteeNames()) {
      CheckResult r{std::string("watch-") + g};
      r.passed = false;
      r.summary = "no watcher recorded: nothing to check";
      r.evidence = {{"watchers", 0}};
      out.push_back(std::move(r));
    }
    return out;
  }

  ProvenChanges proven(h);
  const auto& truth = proven.changes();
  for (const auto& c : proven.contradictions()) {
    const Watcher& w = watchers.at(c.event->watcher);
    const Change& t = truth[c.change];
    reliable.Add(
        w, c.event->revision,
        "watcher " + w.name + " on " + w.Member() + " received " +
            DescribeChange(c.event->is_delete, c.event->key, c.event->revision, c.event->value) +
            " but " + ProvenChanges::Proof(t) + " shows " +
            DescribeChange(t.del, c.event->key, t.rev, t.value),
        json::array({EventJson(*c.event), ChangeJson(t, proven)}));
  }

  size_t total_events = 0, total_progress = 0;
  json per_watcher = json::object();
  for (const auto& [name, w] : watchers) {
    total_events += w.events.size();
    total_progress += w.progress.size();
    const std::string who = "watcher " + w.name + " on " + w.Member();
    const EventCodes got = CodesOf(w, proven);
    const int64_t reached = Reached(w);
    const int64_t first_rev = FirstOwed(w);
    CheckOrdered(w, who, ordered);
    CheckUnique(w, who, got, unique);
    CheckAtomic(w, who, atomic);
    CheckResumable(w, who, proven, resumable);
    CheckBookmarkable(w, who, bookmarkable);
    const size_t missing = CheckReliable(w, who, proven, got, first_rev, reached, reliable);
    CheckPrevKvAndIsCreate(w, who, proven, prev_kv, is_create);
    // How its streams ended (compacted, canceled, stopped, error): a slow watcher that was
    // told it fell behind a compaction shows it here.
    json ends = json::object();
    for (const WatchOpen* o : w.opens) {
      if (!o->end.empty()) ends[o->end] = ends.value(o->end, 0) + 1;
    }
    per_watcher[name] = {{"member", w.Member()},      {"streams", w.opens.size()},
                         {"events", w.events.size()}, {"progress", w.progress.size()},
                         {"from", first_rev},         {"reached", reached},
                         {"missing", missing},        {"ends", ends}};
  }

  json common = {{"watchers", watchers.size()},
                 {"events", total_events},
                 {"progress_notifications", total_progress},
                 {"proven_changes", truth.size()}};
  const std::string n =
      std::to_string(watchers.size()) + " watcher(s), " + std::to_string(total_events) + " events";
  std::vector<CheckResult> out;
  out.push_back(ordered.Result(n + ": revisions never went back", common));
  out.push_back(unique.Result(n + ": no event twice", common));
  out.push_back(atomic.Result(n + ": no revision split over responses", common));
  out.push_back(resumable.Result(n + ": every stream began where it was opened", common));
  out.push_back(bookmarkable.Result(
      n + ", " + std::to_string(total_progress) + " progress notifications: none broken", common));
  json rel = common;
  rel["per_watcher"] = per_watcher;
  out.push_back(reliable.Result(n + ": every proven change in their span was delivered (" +
                                    std::to_string(truth.size()) + " changes proven)",
                                rel));
  out.push_back(prev_kv.Result(n + ": every prev_kv matched the history", common));
  out.push_back(is_create.Result(n + ": every create flag matched the history", common));
  return out;
}

}  // namespace faultline::verify
