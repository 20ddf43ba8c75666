#include "controller/verify/linearizability.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "controller/verify/linearizability_search.h"

namespace faultline::verify {

namespace {

using namespace lin;

std::string DescribeOp(const Op& op) {
  std::ostringstream s;
  s << "op " << op.id << " (" << ToString(op.type);
  if (op.outcome != Outcome::kOk) {
    if (op.type == OpType::kPut || op.type == OpType::kCas) s << " \"" << op.value << "\"";
    s << ", " << ToString(op.outcome);
  } else if (op.type == OpType::kGet) {
    s << " -> " << (op.found ? "\"" + op.read_value + "\"" : "absent");
    if (op.found) s << " @ mod_revision " << op.read_mod_revision;
    if (op.revision > 0) s << ", store revision " << op.revision;
  } else if (op.type == OpType::kPut) {
    s << " \"" << op.value << "\" @ revision " << op.revision;
  } else if (op.type == OpType::kCas) {
    s << " \"" << op.value << "\" " << (op.succeeded ? "succeeded" : "failed");
    if (op.revision > 0) s << " @ revision " << op.revision;
  } else {
    s << " deleted " << op.deleted;
    if (op.revision > 0) s << " @ revision " << op.revision;
  }
  s << ", client " << op.client << ")";
  return s.str();
}

// The key's answered ops by invocation, their return times, and its quiescent segments.
struct Layout {
  std::vector<uint32_t> answered;    // KeyData::ops indices, by invocation
  std::vector<int64_t> returns;      // of the answered ops, sorted
  std::vector<int64_t> revision_by;  // [i]: the highest revision answered by returns[i]

  std::vector<int64_t> seg_start;   // invocation of each quiescent segment's first answered op
  std::vector<uint32_t> seg_begin;  // first KeyData::ops index of each segment
  // The store revision is known to have reached this before `t`: the highest one answered before.
  int64_t FloorAt(int64_t t) const {
    size_t n = std::lower_bound(returns.begin(), returns.end(), t) - returns.begin();
    return n == 0 ? 0 : revision_by[n - 1];
  }

  size_t SegmentOf(int64_t t) const {
    size_t s = std::upper_bound(seg_start.begin(), seg_start.end(), t) - seg_start.begin();
    return s == 0 ? 0 : s - 1;
  }
};

Layout MakeLayout(const KeyData& d) {
  Layout l;
  int64_t busy_until = std::numeric_limits<int64_t>::min();
  for (uint32_t i = 0; i < d.ops.size(); ++i) {
    const KOp& k = d.ops[i];
    if (k.role != Role::kAnswered) continue;
    l.answered.push_back(i);
    if (busy_until < k.invoke) {
      l.seg_begin.push_back(l.seg_start.empty() ? 0 : i);
      l.seg_start.push_back(k.invoke);
    }
    busy_until = std::max(busy_until, k.ret);
  }
  std::vector<std::pair<int64_t, int64_t>> by_return;
  for (uint32_t i : l.answered) by_return.push_back({d.ops[i].ret, d.ops[i].revision});
  std::sort(by_return.begin(), by_return.end());
  int64_t high = 0;
  for (const auto& [t, rev] : by_return) {
    l.returns.push_back(t);
    high = std::max(high, rev);
    l.revision_by.push_back(high);
  }
  return l;
}

// The ops from `t0` to `cut`, to be searched from any state. Sound at any t0: every answered op
// that returned before t0 precedes every op invoked after it, so some state covers all of them.
// Writes in flight at t0 may have taken effect before that state or inside the window: they are
// optional here. Reads in flight are left out (dropping reads never makes a failure), and so are
// ops invoked after the cut. Every unknown op invoked by the cut may still apply.
Problem Window(const KeyData& d, int64_t t0, int64_t cut) {
  Problem w;
  for (uint32_t i = 0; i < d.ops.size() && d.ops[i].invoke <= cut; ++i) {
    const KOp& k = d.ops[i];
    if (k.role == Role::kPending || k.invoke >= t0) {
      w.members.push_back(i);
    } else if (k.ret >= t0 && k.Mutates()) {
      w.members.push_back(i);
      w.optional.push_back(i);
    }
  }
  return w;
}

// Charges steps to a key's budget.
struct Budget {
  uint64_t left;
  SearchStats* stats;
  Verdict Run(const KeyData& d, const Pools& pools, const Problem& p, int64_t cut,
              const std::vector<Config>& starts, bool all, std::vector<Config>* ends, Trace* trace,
              uint64_t cap = kNoCap) {
    uint64_t before = stats->steps;
    Verdict v = verify::Run(d, pools, p, cut, starts, all, std::min(left, cap), stats, ends, trace);
    left -= std::min(left, stats->steps - before);
    return v;
  }
  static constexpr uint64_t kNoCap = std::numeric_limits<uint64_t>::max();
};

// Finds and describes the smallest failing part of `p` (which has no linearization from any of
// `starts`, with `pools`, up to `cut`).
KeyFailure Explain(const KeyData& d, const Layout& layout, const Problem& p, int64_t cut,
                   const std::vector<Config>& starts, const Pools& start_pools, int64_t start_t,
                   Budget* budget) {
  KeyFailure f;
  f.key = d.key;
  f.key_ops = d.checked;
  f.segments = layout.seg_start.size();
  // 1. The shortest failing prefix, exactly: a linearizable history stays linearizable when
  // cut, so failing is monotone in the cut.
  std::vector<int64_t> cuts;
  for (uint32_t m : p.members) {
    const KOp& k = d.ops[m];
    if (k.role == Role::kAnswered && k.ret <= cut &&
        !std::binary_search(p.optional.begin(), p.optional.end(), m)) {
      cuts.push_back(k.ret);
    }
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  size_t lo = 0, hi = cuts.size() - 1;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (budget->Run(d, start_pools, p, cuts[mid], starts, false, nullptr, nullptr) ==
        Verdict::kFail) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  cut = cuts[lo];
  const KOp* failing = nullptr;
  for (uint32_t m : p.members) {
    const KOp& k = d.ops[m];
    if (k.role == Role::kAnswered && k.ret == cut &&
        !std::binary_search(p.optional.begin(), p.optional.end(), m)) {
      failing = &k;
    }
  }
  f.segment = layout.SegmentOf(failing->invoke);
  // 2. The latest start that still fails from any state (see Window). Windows only grow towards
  // the past, and a larger one fails if a smaller one does: probe at doubling distances, then
  // bisect.
  std::vector<int64_t> starts_t;  // candidate window starts, latest first
  int64_t own_start = kNever;
  for (uint32_t m : p.members) {
    const KOp& k = d.ops[m];
    if (k.role == Role::kAnswered) own_start = std::min(own_start, k.invoke);
  }
  for (uint32_t m : p.members) {
    const KOp& k = d.ops[m];
    if (k.role == Role::kAnswered && k.invoke > own_start && k.invoke <= failing->invoke) {
      starts_t.push_back(k.invoke);
    }
  }
  std::sort(starts_t.begin(), starts_t.end());
  starts_t.erase(std::unique(starts_t.begin(), starts_t.end()), starts_t.end());
  std::reverse(starts_t.begin(), starts_t.end());
  auto fails_from = [&](int64_t t0) {
    return budget->Run(d, d.pools, Window(d, t0, cut), cut, WildStart(layout.FloorAt(t0)), false,
                       nullptr, nullptr) == Verdict::kFail;
  };
  std::optional<size_t> found;
  size_t passed = 0;  // starts_t[0, passed) are known not to fail
  for (size_t i = 0; i < starts_t.size(); i = i * 2 + 1) {
    if (fails_from(starts_t[i])) {
      found = i;
      break;
    }
    passed = i + 1;
  }
  if (!found && passed < starts_t.size() && fails_from(starts_t.back())) {
    found = starts_t.size() - 1;
  }
  if (found) {
    size_t a = passed, b = *found;
    while (a < b) {
      size_t mid = a + (b - a) / 2;
      if (fails_from(starts_t[mid])) {
        b = mid;
      } else {
        a = mid + 1;
      }
    }
    found = b;
  }
  const Problem window = found ? Window(d, starts_t[*found], cut) : p;
  const int64_t t0 = found ? starts_t[*found] : start_t;
  const std::vector<Config> from = found ? WildStart(layout.FloorAt(starts_t[*found])) : starts;
  const Pools& pools = found ? d.pools : start_pools;
  // 3. The core: the fewest ops of the window that must keep their recorded answers for the
  // failure to stand, every other write relaxed to "may or may not have taken effect" and every
  // other read left out (both only allow more, so a failure that stands is a failure of the
  // window). Delta debugging over the ops, with a bound on the searches it may run.
  const uint32_t f_index = static_cast<uint32_t>(failing - d.ops.data());
  auto relaxed = [&](const std::vector<uint32_t>& strict) {
    Problem q;
    for (uint32_t m : window.members) {
      const KOp& k = d.ops[m];
      bool opt = std::binary_search(window.optional.begin(), window.optional.end(), m);
      bool keep = k.role == Role::kPending || opt || m == f_index ||
                  std::binary_search(strict.begin(), strict.end(), m);
      if (keep || k.Mutates()) q.members.push_back(m);
      if (opt || (!keep && k.Mutates())) q.optional.push_back(m);
    }
    return q;
  };
  std::vector<uint32_t> strict;
  for (uint32_t m : window.members) {
    const KOp& k = d.ops[m];
    if (k.role == Role::kAnswered && m != f_index && k.invoke <= cut &&
        !std::binary_search(window.optional.begin(), window.optional.end(), m)) {
      strict.push_back(m);
    }
  }
  {
    int tests = 0;
    constexpr int kMaxTests = 400;
    auto still_fails = [&](const std::vector<uint32_t>& s) {
      ++tests;
      return budget->Run(d, pools, relaxed(s), cut, from, false, nullptr, nullptr,
                         200 * window.members.size() + 100'000) == Verdict::kFail;
    };
    if (strict.size() <= 4000) {
      size_t chunks = 2;
      while (!strict.empty() && tests < kMaxTests) {
        chunks = std::min(chunks, strict.size());
        bool removed = false;
        for (size_t c = 0; c < chunks && tests < kMaxTests; ++c) {
          size_t lo_i = strict.size() * c / chunks, hi_i = strict.size() * (c + 1) / chunks;
          std::vector<uint32_t> rest(strict.begin(), strict.begin() + lo_i);
          rest.insert(rest.end(), strict.begin() + hi_i, strict.end());
          if (still_fails(rest)) {
            strict = std::move(rest);
            chunks = std::max<size_t>(chunks - 1, 2);
            removed = true;
            break;
          }
        }
        if (removed) continue;
        if (chunks >= strict.size()) break;
        chunks = std::min(chunks * 2, strict.size());
      }
    }
  }
  const Problem core = relaxed(strict);
  // 4. The longest linearization of the core, to show where it gets stuck.
  Trace trace;
  trace.record_path = core.members.size() <= 5000;
  budget->Run(d, pools, core, cut, from, false, nullptr, &trace);
  int64_t first_invoke = kNever;
  for (uint32_t m : window.members) {
    const KOp& k = d.ops[m];
    if (k.role == Role::kAnswered) first_invoke = std::min(first_invoke, k.invoke);
  }
  size_t window_ops = 0;
  for (uint32_t m : window.members) window_ops += d.ops[m].invoke >= first_invoke;
  std::vector<const Op*> shown = {failing->src};
  for (uint32_t m : strict) shown.push_back(d.ops[m].src);
  for (const Op* op : trace.path) {
    if (std::find(shown.begin(), shown.end(), op) == shown.end()) shown.push_back(op);
  }
  std::sort(shown.begin(), shown.end(), [](const Op* a, const Op* b) {
    return a->invoke_ns != b->invoke_ns ? a->invoke_ns < b->invoke_ns : a->id < b->id;
  });
  f.prefix_ops = shown.size();
  constexpr size_t kMaxShown = 60;
  if (shown.size() > kMaxShown) {
    // Keep the ops nearest the failing one: a few after it in invocation order, the rest before.
    size_t at = std::find(shown.begin(), shown.end(), failing->src) - shown.begin();
    size_t end = at + 1 + std::min<size_t>(shown.size() - at - 1, kMaxShown / 4);
    size_t begin = end >= kMaxShown ? end - kMaxShown : 0;
    shown = std::vector<const Op*>(shown.begin() + begin, shown.begin() + begin + kMaxShown);
  }
  // Context: the last writes that finished before a window from a known state (they made it),
  // and the write of the value the failing read saw, wherever it is.
  std::vector<const Op*> context;
  auto add_context = [&](const Op* op) {
    if (std::find(context.begin(), context.end(), op) == context.end() &&
        std::find(shown.begin(), shown.end(), op) == shown.end()) {
      context.push_back(op);
    }
  };
  const bool from_any = from.size() == 1 && from[0].s.wild;
  for (auto it = layout.answered.rbegin();
       !from_any && it != layout.answered.rend() && context.size() < 2; ++it) {
    const KOp& k = d.ops[*it];
    if (k.ret < first_invoke && k.Mutates()) add_context(k.src);
  }
  const Op* read_writer = nullptr;
  if (failing->type == OpType::kGet && failing->found) {
    auto w = d.writer.find(failing->read_value);
    if (w != d.writer.end()) read_writer = w->second;
  }
  if (read_writer != nullptr) add_context(read_writer);
  // And the op that showed the store revision a window from any state starts at.
  const int64_t floor = from_any ? from[0].s.floor : 0;
  const Op* floor_op = nullptr;
  for (uint32_t i : layout.answered) {
    if (floor > 0 && d.ops[i].revision == floor && d.ops[i].ret < t0) {
      floor_op = d.ops[i].src;
    }
  }
  if (floor_op != nullptr) add_context(floor_op);
  std::sort(context.begin(), context.end(),
            [](const Op* a, const Op* b) { return a->invoke_ns < b->invoke_ns; });
  f.context_ops = context.size();
  for (const Op* op : context) f.window.push_back(*op);
  for (const Op* op : shown) f.window.push_back(*op);
  f.failing_op = failing->src->id;
  f.window_start_ns = t0;
  f.window_end_ns = cut;
  if (found || (from.size() == 1 && from[0].s.wild)) {
    f.start_state = "any state";
  } else {
    for (size_t i = 0; i < from.size() && i < 4; ++i) {
      f.start_state += (i ? " or " : "") + Describe(d, from[i].s);
    }
    if (from.size() > 4) f.start_state += " or " + std::to_string(from.size() - 4) + " more";
  }
  for (const Op* op : trace.path) f.linearized.push_back(op->id);
  f.stuck_state = Describe(d, trace.state);
  std::ostringstream why;
  why << "key " << d.key << ": " << DescribeOp(*failing->src) << " cannot be linearized";
  if (strict.empty() && trace.path.empty() && failing->type == OpType::kGet &&
      failing->read_written_at != 0 && failing->read_written_at != failing->read_mod_revision) {
    why << " in any state: op " << read_writer->id << " wrote that value at revision "
        << failing->read_written_at;
    f.explanation = why.str();
    return f;
  }
  const bool any = f.start_state == "any state";
  why << ": the window of " << window_ops << " ops from "
      << (t0 >= failing->invoke ? std::string("its invocation")
                                : std::to_string((failing->invoke - t0) / 1000) + "us before it" +
                                      (any ? "" : " (a quiescent point)"))
      << " to its return has no linearization from "
      << (any ? "any state" : "the key " + f.start_state);
  if (floor > 0) {
    why << " with the store revision at " << floor << " or more (";
    if (floor_op != nullptr) {
      why << "op " << floor_op->id << " had answered at " << floor;
    } else {
      why << "an op had answered at " << floor;
    }
    why << " before the window)";
  }
  if (!window.optional.empty()) {
    why << " (" << window.optional.size() << " write(s) in flight at its start taking effect or "
        << "not)";
  }
  if (strict.empty()) {
    why << "; that op alone contradicts it";
  } else {
    why << "; ops";
    for (size_t i = 0; i < strict.size() && i < 8; ++i) {
      why << (i ? ", " : " ") << d.ops[strict[i]].src->id;
    }
    if (strict.size() > 8) why << " and " << strict.size() - 8 << " more";
    why << " and it suffice";
  }
  why << " (every other write of the window may or may not have taken effect)";
  if (!trace.path.empty()) {
    why << "; the longest linearization of those (" << trace.path.size() << " ops) leaves the key "
        << f.stuck_state;
  } else {
    why << "; nothing can be linearized first";
  }
  f.explanation = why.str();
  return f;
}

// A cheap proof for where the fast pass got stuck: windows ending a little after the op it could
// not get past, growing towards the past, each searched from any state (see Window). Returns the
// first that fails, with its cut.
struct Proof {
  Problem window;
  int64_t t0, cut, floor;
};
std::optional<Proof> ProveByWindow(const KeyData& d, const Layout& layout, int32_t blocked,
                                   Budget* budget) {
  if (blocked < 0) return std::nullopt;
  const KOp& b = d.ops[blocked];
  // The op that cannot be placed may return after the one the search got stuck at: one that
  // was running then (a read concurrent with the write it contradicts), or a little later.
  size_t at = std::lower_bound(layout.returns.begin(), layout.returns.end(), b.ret) -
              layout.returns.begin();
  int64_t cut = layout.returns[std::min(at + 64, layout.returns.size() - 1)];
  size_t bi = std::lower_bound(layout.answered.begin(), layout.answered.end(), b.invoke,
                               [&](uint32_t i, int64_t t) { return d.ops[i].invoke < t; }) -
              layout.answered.begin();
  for (size_t i = bi; i < layout.answered.size(); ++i) {
    const KOp& k = d.ops[layout.answered[i]];
    if (k.invoke > b.ret) break;
    cut = std::max(cut, k.ret);
  }
  constexpr size_t kMaxWindow = 1 << 17;
  for (size_t dist = 8;; dist *= 4) {
    size_t from = bi > dist ? bi - dist : 0;
    const int64_t t0 = d.ops[layout.answered[from]].invoke;
    Problem w = Window(d, t0, cut);
    if (w.members.size() > kMaxWindow) break;
    // A window that fails must be searched exhaustively; one that is too costly for this cap is
    // left to the exact search (a larger one would cost more still).
    uint64_t cap = 200 * w.members.size() + 1'000'000;
    Verdict v = budget->Run(d, d.pools, w, cut, WildStart(layout.FloorAt(t0)), false, nullptr,
                            nullptr, cap);
    if (v == Verdict::kFail) return Proof{std::move(w), t0, cut, layout.FloorAt(t0)};
    if (v == Verdict::kBudget || from == 0) break;
  }
  return std::nullopt;
}

// Prepares the configurations a segment ended in for the next one, which starts at `next`:
// returns the pending ops still worth tracking. Unknown ops applied in every configuration, and
// proven writes every configuration's store revision has passed, can never apply (again); an
// unknown cas whose expected value is gone for good can never hold; an unknown put whose value
// no later op mentions joins the pool of interchangeable puts.
std::vector<uint32_t> Carry(const KeyData& d, const std::vector<uint32_t>& members, int64_t next,
                            std::vector<Config>* ends, Pools* pools) {
  std::vector<uint32_t> carried;
  auto drop = [&](uint32_t m, bool count_as_pooled) {
    for (Config& c : *ends) {
      auto it = std::lower_bound(c.applied.begin(), c.applied.end(), m);
      if (it == c.applied.end() || *it != m) continue;
      c.applied.erase(it);
      if (count_as_pooled) ++c.used[kPoolPuts];
    }
  };
  for (uint32_t m : members) {
    const KOp& k = d.ops[m];
    if (k.role != Role::kPending) continue;
    if (!k.unknown) {
      bool passed = true;
      for (const Config& c : *ends) passed = passed && c.s.floor >= k.revision;
      if (!passed) carried.push_back(m);
      continue;
    }
    bool everywhere = true;
    for (const Config& c : *ends) {
      everywhere = everywhere && std::binary_search(c.applied.begin(), c.applied.end(), m);
    }
    if (everywhere) {
      drop(m, false);
      continue;
    }
    if (k.type == OpType::kPut && k.mentioned_until < next) {
      drop(m, true);
      (*pools)[kPoolPuts].Add(k.src);
      for (Config& c : *ends) {
        if (c.s.present && c.s.value == k.value) c.s.value = kJunk;
      }
      continue;
    }
    if (k.expect_writer >= 0) {
      // The write is behind: answered in an earlier segment, or proven at a revision every
      // configuration has passed (applied then, or never).
      const KOp& w = d.ops[k.expect_writer];
      bool behind = w.role == Role::kAnswered ? w.invoke < next : true;
      bool held = false;
      for (const Config& c : *ends) {
        held = held || (c.s.present && c.s.value == k.expect);
        if (w.role == Role::kPending) behind = behind && c.s.floor >= w.revision;
      }
      if (behind && !held) {
        drop(m, false);
        continue;
      }
    }
    carried.push_back(m);
  }
  return carried;
}

// One key, segment by segment. First fast: one way through each segment, carried forward. If a
// segment has none from there, either a window around where it got stuck proves the key not
// linearizable, or the search starts over exactly: every minimal configuration of every
// segment, carried forward, so a segment that fails then fails from every way the key could have
// got there.
Verdict CheckKey(const KeyData& d, const LinearizabilityOptions& options, SearchStats* stats,
                 std::optional<KeyFailure>* failure) {
  const Layout layout = MakeLayout(d);
  Budget budget{options.max_steps_per_key, stats};
  Pools pools = d.pools;  // grows as tracked unknown puts become interchangeable
  auto fail = [&](const Problem& p, int64_t cut, const std::vector<Config>& starts,
                  const Pools& with, int64_t start_t) {
    if (failure == nullptr) return Verdict::kFail;
    if (options.shrink) {
      *failure = Explain(d, layout, p, cut, starts, with, start_t, &budget);
    } else {
      KeyFailure f;
      f.key = d.key;
      f.key_ops = d.checked;
      f.segments = layout.seg_start.size();
      f.explanation = "key " + d.key + ": no linearization";
      *failure = std::move(f);
    }
    return Verdict::kFail;
  };
  bool exact = false;
  std::vector<Config> frontier = {Config{}};
  std::vector<uint32_t> carried;
  for (size_t s = 0; s < layout.seg_start.size(); ++s) {
    Problem p;
    p.rest_follows = true;
    p.stall = exact ? 0 : 1'000'000;
    p.members = carried;
    const size_t end = s + 1 < layout.seg_start.size() ? layout.seg_begin[s + 1] : d.ops.size();
    for (uint32_t i = layout.seg_begin[s]; i < end; ++i) p.members.push_back(i);
    std::vector<Config> ends;
    Trace trace;
    // The fast pass goes nearly straight through a linearizable segment; one it cannot get
    // through soon is treated as stuck.
    const uint64_t cap = exact ? Budget::kNoCap : 50 * p.members.size() + 1'000'000;
    Verdict v =
        budget.Run(d, pools, p, kNever, frontier, exact, &ends, exact ? nullptr : &trace, cap);
    if (v == Verdict::kBudget && (exact || budget.left == 0)) return v;
    if (v != Verdict::kOk) {
      if (exact) return fail(p, kNever, frontier, pools, layout.seg_start[s]);
      if (auto proof = ProveByWindow(d, layout, trace.blocked, &budget)) {
        return fail(proof->window, proof->cut, WildStart(proof->floor), d.pools, proof->t0);
      }
      if (budget.left == 0) return Verdict::kBudget;
      exact = true;
      frontier = {Config{}};
      carried.clear();
      pools = d.pools;
      s = static_cast<size_t>(-1);
      continue;
    }
    carried = Carry(d, p.members, end < d.ops.size() ? d.ops[end].invoke : kNever, &ends, &pools);
    frontier.clear();
    for (Config& c : ends) AddMinimal(&frontier, std::move(c));
  }
  return Verdict::kOk;
}

}  // namespace

LinearizabilityResult CheckLinearizability(const History& h,
                                           const LinearizabilityOptions& options) {
  LinearizabilityResult r;
  std::unordered_map<std::string, std::vector<const Op*>> by_key;
  std::vector<std::string> order;
  for (const Op& op : h.ops) {
    // Keys that carry a lease vanish with it: CheckLeases judges them.
    bool skip = op.outcome == Outcome::kFailed || op.lease != 0 ||
                (op.type == OpType::kGet && (op.serializable || op.outcome != Outcome::kOk));
    if (skip) {
      ++r.ops_skipped;
      continue;
    }
    auto [it, fresh] = by_key.try_emplace(op.key);
    if (fresh) order.push_back(op.key);
    it->second.push_back(&op);
  }
  std::sort(order.begin(), order.end());
  r.keys = order.size();
  // Values seen by watchers and the final read, per key: they prove unknown writes too.
  std::unordered_map<std::string, std::unordered_map<std::string, Observed>> observed;
  for (const History::Final& f : h.final_reads) {
    if (f.present && by_key.count(f.key)) observed[f.key][f.value] = {f.mod_revision, false};
  }
  for (const WatchEvent& e : h.watch_events) {
    if (!e.is_delete && by_key.count(e.key)) observed[e.key][e.value] = {e.revision, true};
  }
  static const std::unordered_map<std::string, Observed> kNone;
  SearchStats stats;
  UnknownTally unknown;
  bool failed = false;
  for (const std::string& key : order) {
    auto seen = observed.find(key);
    KeyData d = Prepare(key, std::move(by_key[key]), seen == observed.end() ? kNone : seen->second);
    unknown.Add(d.unknown);
    r.ops_checked += d.checked;
    std::optional<KeyFailure> failure;
    Verdict v =
        CheckKey(d, options, &stats, r.failures.size() < options.max_failures ? &failure : nullptr);
    if (v == Verdict::kBudget) r.inconclusive_keys.push_back(key);
    if (v == Verdict::kFail) failed = true;
    if (failure) r.failures.push_back(std::move(*failure));
  }
  r.steps = stats.steps;
  r.memo_entries = stats.memo;
  r.unknown_ops = unknown.ops;
  r.unknown_proven_by_read = unknown.proven_by_read;
  r.unknown_proven_by_watch = unknown.proven_by_watch;
  r.unknown_proven_by_final = unknown.proven_by_final;
  r.unknown_no_effect = unknown.no_effect;
  r.unknown_unresolved = unknown.Unresolved();
  if (failed) {
    r.verdict = LinearizabilityResult::Verdict::kNotLinearizable;
  } else if (!r.inconclusive_keys.empty()) {
    r.verdict = LinearizabilityResult::Verdict::kInconclusive;
  }
  return r;
}

std::string LinearizabilityResult::Summary() const {
  std::ostringstream s;
  switch (verdict) {
    case Verdict::kLinearizable:
      s << "linearizable";
      break;
    case Verdict::kNotLinearizable:
      s << "NOT linearizable";
      break;
    case Verdict::kInconclusive:
      s << "inconclusive (search budget exhausted)";
      break;
  }
  s << ": " << ops_checked << " ops over " << keys << " keys checked, " << ops_skipped
    << " skipped (failed, serializable or unanswered reads)";
  if (unknown_ops > 0) {
    s << "; " << unknown_ops << " without an answer: "
      << unknown_proven_by_read + unknown_proven_by_watch + unknown_proven_by_final
      << " proven to have happened (" << unknown_proven_by_read << " by a read, "
      << unknown_proven_by_watch << " by a watch event, " << unknown_proven_by_final
      << " by the final read), " << unknown_no_effect << " without effect, " << unknown_unresolved
      << " still unknown";
  }
  if (!failures.empty())
    s << "; " << failures.size() << " failing key(s), first: " << failures.front().explanation;
  if (!inconclusive_keys.empty()) s << "; inconclusive keys: " << inconclusive_keys.size();
  return s.str();
}

std::string RenderFailure(const KeyFailure& f) {
  std::ostringstream s;
  s << f.explanation << "\n";
  if (f.window.empty()) return s.str();
  s << "(>: the op that cannot be linearized, ~: earlier ops for context, #n: place in the "
       "longest linearization)\n";
  std::unordered_map<int64_t, size_t> place;
  for (size_t i = 0; i < f.linearized.size(); ++i) place[f.linearized[i]] = i + 1;
  int64_t t0 = f.window.front().invoke_ns;
  for (const Op& op : f.window) t0 = std::min(t0, op.invoke_ns);
  for (size_t i = 0; i < f.window.size(); ++i) {
    const Op& op = f.window[i];
    char mark = op.id == f.failing_op ? '>' : i < f.context_ops ? '~' : ' ';
    s << mark << " op " << op.id << " client " << op.client << " [" << (op.invoke_ns - t0) / 1000
      << "us, " << (op.return_ns - t0) / 1000 << "us] " << ToString(op.type);
    switch (op.type) {
      case OpType::kPut:
        s << " \"" << op.value << "\"";
        break;
      case OpType::kCas:
        s << " if " << (op.expect_absent ? std::string("absent") : "\"" + op.expect_value + "\"")
          << " then \"" << op.value << "\"";
        break;
      default:
        break;
    }
    s << " -> " << ToString(op.outcome);
    if (op.outcome == Outcome::kOk) {
      if (op.type == OpType::kGet) {
        s << (op.found
                  ? " \"" + op.read_value + "\" mod_rev " + std::to_string(op.read_mod_revision)
                  : std::string(" absent"));
      }
      if (op.type == OpType::kCas) s << (op.succeeded ? " succeeded" : " compare false");
      if (op.type == OpType::kDelete) s << " deleted " << op.deleted;
      s << " rev " << op.revision;
    }
    auto it = place.find(op.id);
    if (it != place.end()) s << "  #" << it->second;
    s << "\n";
  }
  return s.str();
}

}  // namespace faultline::verify
