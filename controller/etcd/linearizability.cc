#include "controller/etcd/linearizability.h"

#include <algorithm>
#include <limits>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace faultline::controller::etcd {

namespace {

// A stateless mixer: hashing, not randomness (nothing here needs a seed).
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct KState {
  bool present = false;
  uint32_t value = 0;
  int64_t rev = 0;    // revision of the last change; 0 = unknown (written by an unknown op)
  int64_t floor = 0;  // the store revision is known to have reached this (response headers)
  uint64_t Hash(uint64_t salt) const {
    return Mix(salt ^ Mix((present ? 1ULL << 63 : 0) ^ value) ^ Mix(static_cast<uint64_t>(rev)) ^
               Mix(static_cast<uint64_t>(floor) * 0x9e3779b97f4a7c15ULL));
  }
};

// An op of one key with values interned to small ids.
struct KOp {
  const Op* src;
  bool unknown;
  uint32_t value = 0;
  uint32_t expect = 0;
  uint32_t read_value = 0;
};

class Interner {
 public:
  uint32_t Id(const std::string& s) {
    auto [it, fresh] = ids_.try_emplace(s, static_cast<uint32_t>(ids_.size() + 1));
    return it->second;
  }

 private:
  std::unordered_map<std::string, uint32_t> ids_;
};

// The etcd KV model: false if `op` cannot happen in state `s`. Besides the key's own value and
// mod revision it tracks the lowest store revision the key's ops have shown (`floor`): etcd's
// store revision only grows, so an op answered at header revision H cannot come after one that
// saw a higher revision, and a write at revision R cannot come after an op that saw R or more.
bool Step(const KState& s, const KOp& k, KState* out) {
  const Op& op = *k.src;
  *out = s;
  // An answered op that did not change the key observed the store at header revision H.
  auto observe = [&](int64_t h) {
    if (h == 0) return true;  // no header recorded (hand-written histories)
    if (h < s.floor || (s.rev != 0 && h < s.rev)) return false;
    out->floor = h;
    return true;
  };
  // An answered write at revision r.
  auto write = [&](bool present, uint32_t value, int64_t r) {
    if (r <= s.floor || (s.rev != 0 && r <= s.rev)) return false;
    *out = {present, value, r, r};
    return true;
  };
  switch (op.type) {
    case OpType::kGet: {
      if (op.found != s.present) return false;
      if (!observe(op.revision)) return false;
      if (!s.present) return true;
      if (k.read_value != s.value) return false;
      if (s.rev == 0) {
        out->rev = op.read_mod_revision;  // learn the revision of an unknown write
        return op.read_mod_revision > 0;
      }
      return op.read_mod_revision == s.rev;
    }
    case OpType::kPut:
      if (k.unknown) {
        *out = {true, k.value, 0, s.floor};
        return true;
      }
      return write(true, k.value, op.revision);
    case OpType::kCas: {
      bool holds;
      if (op.cas_on == CasOn::kValue) {
        holds = op.expect_absent ? !s.present : (s.present && s.value == k.expect);
      } else if (op.expect_mod_revision == 0) {
        holds = !s.present;
      } else if (s.present && s.rev == 0) {
        holds = k.unknown || op.succeeded;  // revision unknown: cannot refute either way
      } else {
        holds = s.present && s.rev == op.expect_mod_revision;
      }
      if (k.unknown) {
        if (holds) *out = {true, k.value, 0, s.floor};
        return true;
      }
      if (op.succeeded != holds) return false;
      if (!holds) return observe(op.revision);
      return write(true, k.value, op.revision);
    }
    case OpType::kDelete:
      if (k.unknown) {
        *out = {false, 0, s.present ? 0 : s.rev, s.floor};
        return true;
      }
      if (op.deleted != (s.present ? 1 : 0)) return false;
      if (!s.present) return observe(op.revision);
      return write(false, 0, op.revision);
  }
  return false;
}

struct MemoKey {
  uint64_t a, b;
  bool operator==(const MemoKey&) const = default;
};
struct MemoHash {
  size_t operator()(const MemoKey& k) const { return k.a ^ (k.b * 0x9e3779b97f4a7c15ULL); }
};

enum class Verdict { kOk, kFail, kBudget };

struct SearchStats {
  uint64_t steps = 0;
  uint64_t memo = 0;
};

// Wing–Gong/Lowe search over one key's ops. Ops with unknown outcome have no return entry: they
// never force a backtrack and the search ends once every ok op is linearized.
// On failure, *blocked (if given) is the op whose return the search could not get past when it
// had linearized the most ops: where the history stops making sense.
Verdict SearchOrdered(const std::vector<KOp>& ops, uint64_t budget, bool by_rank,
                      SearchStats* stats, int32_t* blocked) {
  struct Node {
    int32_t op = -1;
    bool call = false;
    int32_t ret = -1;  // call: index of its return node, -1 for unknown ops
    int32_t prev = -1, next = -1;
  };
  struct Ev {
    int64_t t;
    bool ret;
    int32_t op;
  };
  std::vector<Ev> evs;
  evs.reserve(ops.size() * 2);
  size_t remaining_ok = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    evs.push_back({ops[i].src->invoke_ns, false, static_cast<int32_t>(i)});
    if (!ops[i].unknown) {
      evs.push_back({ops[i].src->return_ns, true, static_cast<int32_t>(i)});
      ++remaining_ok;
    }
  }
  // Calls sort before returns at the same instant: ops that touch in time count as concurrent.
  std::sort(evs.begin(), evs.end(), [](const Ev& x, const Ev& y) {
    if (x.t != y.t) return x.t < y.t;
    if (x.ret != y.ret) return !x.ret;
    return x.op < y.op;
  });
  // Node 0 is the head; node n+1 is the tail.
  std::vector<Node> nodes(evs.size() + 2);
  std::vector<int32_t> call_node(ops.size(), -1), ret_node(ops.size(), -1);
  for (size_t i = 0; i < evs.size(); ++i) {
    Node& n = nodes[i + 1];
    n.op = evs[i].op;
    n.call = !evs[i].ret;
    (n.call ? call_node : ret_node)[evs[i].op] = static_cast<int32_t>(i + 1);
  }
  const int32_t tail = static_cast<int32_t>(nodes.size() - 1);
  for (int32_t i = 0; i <= tail; ++i) {
    nodes[i].prev = i - 1;
    nodes[i].next = i == tail ? -1 : i + 1;
  }
  for (size_t i = 0; i < ops.size(); ++i) nodes[call_node[i]].ret = ret_node[i];
  auto unlink = [&](int32_t i) {
    nodes[nodes[i].prev].next = nodes[i].next;
    nodes[nodes[i].next].prev = nodes[i].prev;
  };
  auto relink = [&](int32_t i) {
    nodes[nodes[i].prev].next = i;
    nodes[nodes[i].next].prev = i;
  };
  std::vector<uint64_t> za(ops.size()), zb(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    za[i] = Mix(i * 2 + 1);
    zb[i] = Mix(~(i * 2 + 1) ^ 0x5bd1e995ULL);
  }
  std::unordered_set<MemoKey, MemoHash> memo;
  memo.reserve(ops.size() * 2);
  // The order candidates are tried in: by the revision their answer carries (a write's own, the
  // header revision a read or no-op write was served at), writes before reads at the same
  // revision, unknown ops last. The true order mostly follows revisions, so the search rarely
  // has to backtrack; any order is correct, only the time taken differs.
  std::vector<int64_t> rank(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = *ops[i].src;
    bool changes = op.type == OpType::kPut || (op.type == OpType::kCas && op.succeeded) ||
                   (op.type == OpType::kDelete && op.deleted > 0);
    rank[i] = ops[i].unknown || op.revision == 0 ? std::numeric_limits<int64_t>::max()
                                                 : op.revision * 2 + (changes ? 0 : 1);
  }
  // One level per linearized op: its candidates live in `arena[begin, end)`.
  struct Level {
    uint32_t begin, end, pos;
    int32_t chosen = -1;
    KState prev;
  };
  std::vector<int32_t> arena;
  std::vector<Level> levels;
  levels.reserve(ops.size() + 1);
  size_t fewest_remaining = remaining_ok + 1;
  int32_t deepest_block = -1;
  auto push_level = [&] {
    Level l;
    l.begin = static_cast<uint32_t>(arena.size());
    int32_t e = nodes[0].next;
    for (; e != tail && nodes[e].call; e = nodes[e].next) arena.push_back(e);
    l.end = static_cast<uint32_t>(arena.size());
    l.pos = l.begin;
    if (by_rank) {
      std::stable_sort(arena.begin() + l.begin, arena.end(),
                       [&](int32_t x, int32_t y) { return rank[nodes[x].op] < rank[nodes[y].op]; });
    }
    if (e != tail && remaining_ok < fewest_remaining) {
      fewest_remaining = remaining_ok;
      deepest_block = nodes[e].op;
    }
    levels.push_back(l);
  };
  KState state;
  uint64_t ha = 0, hb = 0;
  uint64_t steps = 0;
  Verdict verdict = Verdict::kFail;
  push_level();
  while (true) {
    if (remaining_ok == 0) {
      verdict = Verdict::kOk;
      break;
    }
    Level& l = levels.back();
    bool descended = false;
    while (l.pos < l.end) {
      if (++steps > budget) break;
      int32_t c = arena[l.pos++];
      const Node& n = nodes[c];
      KState next;
      if (!Step(state, ops[n.op], &next)) continue;
      uint64_t na = ha ^ za[n.op], nb = hb ^ zb[n.op];
      if (!memo.insert({na ^ next.Hash(0x1234), nb ^ next.Hash(0xabcdef)}).second) continue;
      l.chosen = c;
      l.prev = state;
      state = next;
      ha = na;
      hb = nb;
      unlink(c);
      if (n.ret >= 0) {
        unlink(n.ret);
        --remaining_ok;
      }
      descended = true;
      break;
    }
    if (steps > budget) {
      verdict = Verdict::kBudget;
      break;
    }
    if (descended) {
      push_level();
      continue;
    }
    // No candidate fits here: drop this level and undo the parent's choice.
    arena.resize(l.begin);
    levels.pop_back();
    if (levels.empty()) break;
    Level& p = levels.back();
    const Node& c = nodes[p.chosen];
    if (c.ret >= 0) {
      relink(c.ret);
      ++remaining_ok;
    }
    relink(p.chosen);
    ha ^= za[c.op];
    hb ^= zb[c.op];
    state = p.prev;
  }
  stats->steps += steps;
  stats->memo += memo.size();
  if (blocked != nullptr) *blocked = deepest_block;
  return verdict;
}

// Revision order first: nearly always straight through. Some histories (seen with 100k-op keys
// and unknown writes) send it down a long wrong branch; then the plain invocation order, which
// is slower on busy keys but does not share that weakness, gets the rest of the budget.
Verdict Search(const std::vector<KOp>& ops, uint64_t budget, SearchStats* stats,
               int32_t* blocked = nullptr) {
  uint64_t first = std::min<uint64_t>(budget, 50 * ops.size() + 1'000'000);
  SearchStats s1;
  Verdict v = SearchOrdered(ops, first, true, &s1, blocked);
  stats->steps += s1.steps;
  stats->memo += s1.memo;
  if (v != Verdict::kBudget || first == budget) return v;
  return SearchOrdered(ops, budget - first, false, stats, blocked);
}

// The ops of a key that enter the search, in invocation order.
std::vector<KOp> Prepare(const std::vector<const Op*>& src, Interner* values) {
  std::vector<KOp> out;
  out.reserve(src.size());
  for (const Op* op : src) {
    KOp k{op, op->outcome == Outcome::kUnknown};
    if (op->type == OpType::kPut || op->type == OpType::kCas) k.value = values->Id(op->value);
    if (op->type == OpType::kCas && !op->expect_absent) k.expect = values->Id(op->expect_value);
    if (op->type == OpType::kGet && op->found) k.read_value = values->Id(op->read_value);
    out.push_back(k);
  }
  return out;
}

// The history as it stood at time `cut`: ops invoked by then; those still running at `cut` become
// unknown (a write) or vanish (a read). Linearizable histories stay linearizable when cut.
std::vector<KOp> CutAt(const std::vector<KOp>& ops, int64_t cut) {
  std::vector<KOp> out;
  for (const KOp& k : ops) {
    if (k.src->invoke_ns > cut) continue;
    if (k.src->return_ns > cut || k.unknown) {
      if (k.src->type == OpType::kGet) continue;
      if (k.src->type == OpType::kCas && !k.unknown && !k.src->succeeded) continue;
      KOp u = k;
      u.unknown = true;
      out.push_back(u);
      continue;
    }
    out.push_back(k);
  }
  return out;
}

KeyFailure Shrink(const std::string& key, const std::vector<KOp>& ops, int32_t blocked,
                  const LinearizabilityOptions& options, SearchStats* stats) {
  KeyFailure f;
  f.key = key;
  f.key_ops = ops.size();
  std::vector<int64_t> cuts;
  for (const KOp& k : ops) {
    if (!k.unknown) cuts.push_back(k.src->return_ns);
  }
  std::sort(cuts.begin(), cuts.end());
  // The failing cut: first try where the full search got stuck deepest (one search); if that
  // cut alone still fails, binary-search below it for the smallest failing cut, else above it.
  size_t lo = 0, hi = cuts.size() - 1;
  if (blocked >= 0) {
    size_t at =
        std::lower_bound(cuts.begin(), cuts.end(), ops[blocked].src->return_ns) - cuts.begin();
    if (at < cuts.size()) {
      if (Search(CutAt(ops, cuts[at]), options.max_steps_per_key, stats) == Verdict::kFail) {
        hi = at;
        // Usually the op that got stuck is the culprit: check the cut just before it.
        if (at == 0 ||
            Search(CutAt(ops, cuts[at - 1]), options.max_steps_per_key, stats) != Verdict::kFail) {
          lo = at;
        }
      } else {
        lo = at + 1;
      }
    }
  }
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (Search(CutAt(ops, cuts[mid]), options.max_steps_per_key, stats) == Verdict::kFail) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  int64_t cut = cuts[lo];
  std::vector<KOp> prefix = CutAt(ops, cut);
  f.prefix_ops = prefix.size();
  const Op* failing = nullptr;
  for (const KOp& k : ops) {
    if (!k.unknown && k.src->return_ns == cut) failing = k.src;
  }
  f.failing_op = failing->id;
  // The window: ops overlapping the failing one, plus the last few writes that finished before.
  std::vector<const Op*> before, window;
  for (const KOp& k : ops) {
    const Op* op = k.src;
    if (op->invoke_ns > cut) continue;
    if (op->return_ns >= failing->invoke_ns || k.unknown) {
      window.push_back(op);
    } else if (op->type != OpType::kGet) {
      before.push_back(op);
    }
  }
  std::sort(before.begin(), before.end(),
            [](const Op* a, const Op* b) { return a->return_ns < b->return_ns; });
  size_t keep_before = std::min<size_t>(before.size(), 3);
  window.insert(window.end(), before.end() - keep_before, before.end());
  std::sort(window.begin(), window.end(),
            [](const Op* a, const Op* b) { return a->invoke_ns < b->invoke_ns; });
  if (window.size() > 40) window.erase(window.begin(), window.end() - 40);
  for (const Op* op : window) f.window.push_back(*op);
  std::ostringstream why;
  why << "key " << key << ": no linearization of its first " << f.prefix_ops << " of " << f.key_ops
      << " ops can place op " << failing->id << " (" << ToString(failing->type);
  if (failing->type == OpType::kGet) {
    why << " -> " << (failing->found ? "\"" + failing->read_value + "\"" : "absent");
    if (failing->found) why << " @ mod_revision " << failing->read_mod_revision;
  } else if (failing->type == OpType::kPut) {
    why << " \"" << failing->value << "\" @ revision " << failing->revision;
  } else if (failing->type == OpType::kCas) {
    why << (failing->succeeded ? " succeeded" : " failed");
  } else {
    why << " deleted " << failing->deleted;
  }
  why << ", client " << failing->client << ")";
  f.explanation = why.str();
  return f;
}

}  // namespace

LinearizabilityResult CheckLinearizability(const History& h,
                                           const LinearizabilityOptions& options) {
  LinearizabilityResult r;
  std::unordered_map<std::string, std::vector<const Op*>> by_key;
  std::vector<std::string> order;
  for (const Op& op : h.ops) {
    bool skip = op.outcome == Outcome::kFailed ||
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
  SearchStats stats;
  for (const std::string& key : order) {
    Interner values;
    std::vector<KOp> ops = Prepare(by_key[key], &values);
    r.ops_checked += ops.size();
    int32_t blocked = -1;
    Verdict v = Search(ops, options.max_steps_per_key, &stats, &blocked);
    if (v == Verdict::kBudget) {
      r.inconclusive_keys.push_back(key);
      continue;
    }
    if (v == Verdict::kOk) continue;
    if (r.failures.size() >= options.max_failures) {
      r.verdict = LinearizabilityResult::Verdict::kNotLinearizable;
      continue;
    }
    if (options.shrink) {
      r.failures.push_back(Shrink(key, ops, blocked, options, &stats));
    } else {
      KeyFailure f;
      f.key = key;
      f.key_ops = f.prefix_ops = ops.size();
      f.explanation =
          "key " + key + ": no linearization of its " + std::to_string(ops.size()) + " ops";
      r.failures.push_back(std::move(f));
    }
  }
  r.steps = stats.steps;
  r.memo_entries = stats.memo;
  if (!r.failures.empty()) {
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
  if (!failures.empty())
    s << "; " << failures.size() << " failing key(s), first: " << failures.front().explanation;
  if (!inconclusive_keys.empty()) s << "; inconclusive keys: " << inconclusive_keys.size();
  return s.str();
}

std::string RenderFailure(const KeyFailure& f) {
  std::ostringstream s;
  s << f.explanation << "\n";
  if (f.window.empty()) return s.str();
  int64_t t0 = f.window.front().invoke_ns;
  for (const Op& op : f.window) {
    char mark = op.id == f.failing_op ? '>' : ' ';
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
    s << "\n";
  }
  return s.str();
}

}  // namespace faultline::controller::etcd
