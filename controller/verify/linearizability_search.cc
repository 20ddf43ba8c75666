#include "controller/verify/linearizability_search.h"

#include <algorithm>
#include <limits>
#include <sstream>

namespace faultline::verify::lin {

namespace {

// A stateless mixer: hashing, not randomness (nothing here needs a seed).
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// An absent key's last revision never matters (it is at most the floor, which every check
// already covers), so absent states are all one.
KState Known(bool present, uint32_t value, int64_t rev, int64_t floor) {
  return present ? KState{true, false, value, rev, floor} : KState{false, false, 0, 0, floor};
}

// The etcd KV model: false if `k` cannot happen in state `s`.
bool StepKnown(const KState& s, const KOp& k, KState* out) {
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
    *out = Known(present, value, r, r);
    return true;
  };
  switch (k.type) {
    case OpType::kGet: {
      if (k.found != s.present) return false;
      if (!observe(k.revision)) return false;
      if (!s.present) return true;
      if (k.read_value != s.value) return false;
      if (s.rev == 0) {
        out->rev = k.read_mod_revision;  // learn the revision of an unknown write
        return k.read_mod_revision > 0;
      }
      return k.read_mod_revision == s.rev;
    }
    case OpType::kPut:
      if (k.unknown) {
        *out = Known(true, k.value, 0, s.floor);
        return true;
      }
      return write(true, k.value, k.revision);
    case OpType::kCas: {
      bool holds;
      if (k.cas_on == CasOn::kValue) {
        holds = k.expect_absent ? !s.present : (s.present && s.value == k.expect);
      } else if (k.expect_mod_revision == 0) {
        holds = !s.present;
      } else if (s.present && s.rev == 0) {
        holds = k.unknown || k.succeeded;  // revision unknown: cannot refute either way
      } else {
        holds = s.present && s.rev == k.expect_mod_revision;
      }
      if (k.unknown) {
        if (holds) *out = Known(true, k.value, 0, s.floor);
        return true;
      }
      if (k.succeeded != holds) return false;
      if (!holds) return observe(k.revision);
      return write(true, k.value, k.revision);
    }
    case OpType::kDelete:
      if (k.unknown) {
        *out = Known(false, 0, s.present ? 0 : s.rev, s.floor);
        return true;
      }
      if (k.deleted != (s.present ? 1 : 0)) return false;
      if (!s.present) return observe(k.revision);
      return write(false, 0, k.revision);
  }
  return false;
}

// From the unknown state every answer is possible, except below the store revision the window
// is known to start at (`floor`); the first op that shows the key pins it.
bool StepWild(const KState& s, const KOp& k, KState* out) {
  *out = s;
  if (k.unknown) {
    // Applied or not, an unknown write leaves the state as open as it was, unless it wrote.
    if (k.type == OpType::kPut) *out = Known(true, k.value, 0, s.floor);
    if (k.type == OpType::kDelete) *out = Known(false, 0, 0, s.floor);
    return true;  // a cas from an unknown state may or may not have matched: stay wild
  }
  const bool changes = k.type == OpType::kPut || (k.type == OpType::kCas && k.succeeded) ||
                       (k.type == OpType::kDelete && k.deleted > 0);
  if (k.revision != 0 && (changes ? k.revision <= s.floor : k.revision < s.floor)) return false;
  const int64_t seen = k.revision == 0 ? s.floor : k.revision;
  switch (k.type) {
    case OpType::kGet:
      if (!k.found) {
        *out = Known(false, 0, 0, seen);
        return true;
      }
      // Whatever came before, a value can only be there at the revision its writer wrote it.
      if (k.read_written_at != 0 && k.read_written_at != k.read_mod_revision) return false;
      if (k.revision != 0 && k.revision < k.read_mod_revision) return false;
      *out = Known(true, k.read_value, k.read_mod_revision, seen);
      return true;
    case OpType::kPut:
      *out = Known(true, k.value, k.revision, k.revision);
      return true;
    case OpType::kCas:
      if (k.succeeded) {
        *out = Known(true, k.value, k.revision, k.revision);
      } else {
        out->floor = seen;  // a false compare only says the value differed
      }
      return true;
    case OpType::kDelete:
      *out = k.deleted > 0 ? Known(false, 0, k.revision, k.revision) : Known(false, 0, 0, seen);
      return true;
  }
  return false;
}

bool Step(const KState& s, const KOp& k, KState* out) {
  return s.wild ? StepWild(s, k, out) : StepKnown(s, k, out);
}

KOp JunkPut() {
  KOp k;
  k.type = OpType::kPut;
  k.unknown = true;
  k.value = kJunk;
  return k;
}

KOp JunkDelete() {
  KOp k;
  k.type = OpType::kDelete;
  k.unknown = true;
  return k;
}

KOp JunkCreate() {
  KOp k;
  k.type = OpType::kCas;
  k.unknown = true;
  k.expect_absent = true;
  k.value = kJunk;
  return k;
}

const KOp& PoolOp(int kind) {
  static const KOp ops[kPoolKinds] = {JunkPut(), JunkDelete(), JunkCreate()};
  return ops[kind];
}

struct MemoKey {
  uint64_t a, b;
  bool operator==(const MemoKey&) const = default;
};
struct MemoHash {
  size_t operator()(const MemoKey& k) const { return k.a ^ (k.b * 0x9e3779b97f4a7c15ULL); }
};

// Remembers every (linearized answered ops, state) seen, with the unknown ops that had taken
// effect there: a node is skipped when one seen before had the same ops and state and no more
// unknown ops used up (it could do everything this one can).
class Memo {
 public:
  explicit Memo(size_t reserve) { heads_.reserve(reserve); }
  // True if subsumed by an earlier node; otherwise remembers this one.
  bool Seen(MemoKey key, const Used& used, const std::vector<uint32_t>& applied) {
    auto [it, fresh] = heads_.try_emplace(key, kNone);
    for (uint32_t e = it->second; e != kNone; e = entries_[e].next) {
      const Entry& x = entries_[e];
      if (AtMost(x.used, used) &&
          std::includes(applied.begin(), applied.end(), applied_.begin() + x.off,
                        applied_.begin() + x.off + x.len)) {
        return true;
      }
    }
    Entry n{used, static_cast<uint32_t>(applied_.size()), static_cast<uint32_t>(applied.size()),
            it->second};
    applied_.insert(applied_.end(), applied.begin(), applied.end());
    it->second = static_cast<uint32_t>(entries_.size());
    entries_.push_back(n);
    return false;
  }
  size_t size() const { return entries_.size(); }

 private:
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  struct Entry {
    Used used;
    uint32_t off, len, next;
  };
  std::unordered_map<MemoKey, uint32_t, MemoHash> heads_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> applied_;
};

}  // namespace

uint64_t KState::Hash(uint64_t salt) const {
  return Mix(salt ^ Mix((present ? 1ULL << 63 : 0) ^ (wild ? 1ULL << 62 : 0) ^ value) ^
             Mix(static_cast<uint64_t>(rev)) ^
             Mix(static_cast<uint64_t>(floor) * 0x9e3779b97f4a7c15ULL));
}

bool Subsumes(const Config& a, const Config& b) {
  return a.s == b.s && AtMost(a.used, b.used) &&
         std::includes(b.applied.begin(), b.applied.end(), a.applied.begin(), a.applied.end());
}

void AddMinimal(std::vector<Config>* set, Config c) {
  for (const Config& e : *set) {
    if (Subsumes(e, c)) return;
  }
  std::erase_if(*set, [&](const Config& e) { return Subsumes(c, e); });
  set->push_back(std::move(c));
}

Verdict Run(const KeyData& d, const Pools& pools, const Problem& problem, int64_t cut,
            std::vector<Config> starts, bool all, uint64_t budget, SearchStats* stats,
            std::vector<Config>* ends, Trace* trace) {
  const std::vector<uint32_t>& members = problem.members;
  struct Node {
    int64_t t = 0;
    int32_t m = -1;  // index into members
    bool call = false;
    int32_t ret = -1;  // call: its return node, -1 for pending ops
    int32_t prev = -1, next = -1;
  };
  struct Ev {
    int64_t t;
    bool ret;
    int32_t m;
  };
  const size_t n = members.size();
  std::vector<Ev> evs;
  evs.reserve(n * 2);
  std::vector<char> target(n, 0), pending(n, 0);
  size_t targets = 0;
  for (size_t i = 0; i < n; ++i) {
    const KOp& k = d.ops[members[i]];
    evs.push_back({k.invoke, false, static_cast<int32_t>(i)});
    pending[i] = k.role == Role::kPending ||
                 std::binary_search(problem.optional.begin(), problem.optional.end(), members[i]);
    if (!pending[i]) {
      evs.push_back({k.ret, true, static_cast<int32_t>(i)});
      if (k.ret <= cut) {
        target[i] = 1;
        ++targets;
      }
    }
  }
  // Calls sort before returns at the same instant: ops that touch in time count as concurrent.
  std::sort(evs.begin(), evs.end(), [](const Ev& x, const Ev& y) {
    if (x.t != y.t) return x.t < y.t;
    if (x.ret != y.ret) return !x.ret;
    return x.m < y.m;
  });
  // Node 0 is the head; the last node is the tail.
  std::vector<Node> nodes(evs.size() + 2);
  std::vector<int32_t> call_node(n, -1), ret_node(n, -1);
  for (size_t i = 0; i < evs.size(); ++i) {
    Node& nd = nodes[i + 1];
    nd.t = evs[i].t;
    nd.m = evs[i].m;
    nd.call = !evs[i].ret;
    (nd.call ? call_node : ret_node)[evs[i].m] = static_cast<int32_t>(i + 1);
  }
  const int32_t tail = static_cast<int32_t>(nodes.size() - 1);
  for (int32_t i = 0; i <= tail; ++i) {
    nodes[i].prev = i - 1;
    nodes[i].next = i == tail ? -1 : i + 1;
  }
  for (size_t i = 0; i < n; ++i) nodes[call_node[i]].ret = ret_node[i];
  auto unlink = [&](int32_t i) {
    nodes[nodes[i].prev].next = nodes[i].next;
    nodes[nodes[i].next].prev = nodes[i].prev;
  };
  auto relink = [&](int32_t i) {
    nodes[nodes[i].prev].next = i;
    nodes[nodes[i].next].prev = i;
  };
  // Zobrist hashes of the linearized answered ops; unknown ops are compared as sets in the memo.
  std::vector<uint64_t> za(n), zb(n);
  // The order candidates are tried in: by the revision their answer carries (a write's own, the
  // header revision a read or no-op write was served at), writes before reads at the same
  // revision, unknown ops last. The true order mostly follows revisions, so the search rarely
  // backtracks; any order is correct, only the time taken differs.
  std::vector<int64_t> rank(n);
  // The highest store revision at which each target op can still be placed: a write needs the
  // floor below its revision, an observing op needs it at or below its header revision.
  std::vector<int64_t> limit(n, kNever);
  for (size_t i = 0; i < n; ++i) {
    const KOp& k = d.ops[members[i]];
    za[i] = Mix(members[i] * 2 + 1);
    zb[i] = Mix(~(members[i] * 2 + 1) ^ 0x5bd1e995ULL);
    bool changes = k.type == OpType::kPut || (k.type == OpType::kCas && k.succeeded) ||
                   (k.type == OpType::kDelete && k.deleted > 0);
    rank[i] = k.unknown || k.revision == 0 ? kNever : k.revision * 2 + (changes ? 0 : 1);
    if (target[i] && k.revision != 0) limit[i] = changes ? k.revision - 1 : k.revision;
    if (problem.rest_follows && k.role == Role::kPending && !k.unknown) limit[i] = k.revision - 1;
  }
  // Pool candidates are -2 - kind.
  auto pool_of = [](int32_t c) { return -2 - c; };
  struct Level {
    uint32_t begin, end, pos;
    int32_t chosen = 0;
    KState prev;
    bool after_pending = false;  // the op that led here was a skippable pending one
  };
  auto is_pending = [&](int32_t c) { return c < 0 || pending[nodes[c].m]; };
  // A pending op the search may leave out: an unknown one, a pool's, an optional in-flight write.
  // Not a proven write: it happened, at its revision, so leaving it out is no alternative (two
  // proven writes in a row, with nothing answered between them, is an ordinary history).
  auto is_skippable = [&](int32_t c) {
    if (c < 0) return true;
    if (!pending[nodes[c].m]) return false;
    const KOp& k = d.ops[members[nodes[c].m]];
    return k.unknown || k.role != Role::kPending;
  };
  std::vector<int32_t> arena;
  std::vector<Level> levels;
  levels.reserve(n + 1);
  Memo memo(n * 2);
  KState state;
  Used used = {}, start_used = {};
  std::vector<uint32_t> applied;
  size_t remaining = targets;
  uint64_t ha = 0, hb = 0;
  uint64_t steps = 0;
  size_t fewest = std::numeric_limits<size_t>::max();
  uint64_t progress_at = 0;  // steps when `fewest` last went down
  bool stalled = false;
  auto push_level = [&] {
    Level l;
    l.begin = static_cast<uint32_t>(arena.size());
    if (remaining > 0) {
      // Candidates: the calls before the first return still to come (there is one: a target's).
      int32_t e = nodes[0].next;
      for (; nodes[e].call; e = nodes[e].next) arena.push_back(e);
      bool dead = e == tail;
      // A target op that the store revision has already passed can never be placed: this state
      // is dead, whatever is tried next (the floor only grows).
      for (size_t i = l.begin; i < arena.size() && !dead; ++i) {
        dead = limit[nodes[arena[i]].m] < state.floor;
      }
      dead = dead || limit[nodes[e].m] < state.floor;
      if (trace != nullptr && e != tail && remaining < trace->fewest) {
        trace->fewest = remaining;
        trace->blocked = static_cast<int32_t>(members[nodes[e].m]);
        trace->state = state;
        if (trace->record_path) {
          trace->path.clear();
          Used u = start_used;
          for (const Level& x : levels) {
            trace->path.push_back(x.chosen < 0
                                      ? pools[pool_of(x.chosen)].ops[u[pool_of(x.chosen)]++]
                                      : d.ops[members[nodes[x.chosen].m]].src);
          }
        }
      }
      if (dead) e = tail;
      if (dead) {
        arena.resize(l.begin);
      } else {
        std::stable_sort(arena.begin() + l.begin, arena.end(),
                         [&](int32_t x, int32_t y) { return rank[nodes[x].m] < rank[nodes[y].m]; });
        // The least capable first: a create before a put.
        for (int kind : {kPoolCreates, kPoolPuts, kPoolDeletes}) {
          if (pools[kind].InvokedBy(nodes[e].t) > used[kind]) arena.push_back(-2 - kind);
        }
      }
      if (remaining < fewest) {
        fewest = remaining;
        progress_at = steps;
      }
    }
    l.end = static_cast<uint32_t>(arena.size());
    l.pos = l.begin;
    l.after_pending = !levels.empty() && is_skippable(levels.back().chosen);
    levels.push_back(l);
  };
  // The most general starts first: what they cover, the others need not search again.
  std::sort(starts.begin(), starts.end(), [](const Config& a, const Config& b) {
    auto weight = [](const Config& c) {
      return c.applied.size() + c.used[0] + c.used[1] + c.used[2];
    };
    return weight(a) < weight(b);
  });
  Verdict verdict = Verdict::kFail;
  for (const Config& start : starts) {
    state = start.s;
    used = start_used = start.used;
    applied = start.applied;
    std::vector<int32_t> taken;  // members this start had already applied
    for (uint32_t a : applied) {
      auto it = std::lower_bound(members.begin(), members.end(), a);
      if (it != members.end() && *it == a) taken.push_back(call_node[it - members.begin()]);
    }
    for (int32_t c : taken) unlink(c);
    remaining = targets;
    ha = hb = 0;
    if (memo.Seen({state.Hash(0x1234), state.Hash(0xabcdef)}, used, applied)) {
      for (auto it = taken.rbegin(); it != taken.rend(); ++it) relink(*it);
      continue;
    }
    push_level();
    while (!levels.empty()) {
      Level& l = levels.back();
      // Done, unless a proven write the rest needs can no longer apply.
      bool done = remaining == 0;
      for (size_t i = 0; done && problem.rest_follows && i < n; ++i) {
        const int32_t c = call_node[i];
        done = limit[i] >= state.floor || nodes[nodes[c].prev].next != c;
      }
      if (remaining == 0 && !done) l.pos = l.end;
      if (done) {
        if (ends != nullptr) AddMinimal(ends, Config{state, applied, used});
        if (!all) {
          verdict = Verdict::kOk;
          break;
        }
      }
      bool descended = false;
      while (l.pos < l.end) {
        if (++steps > budget) break;
        if (problem.stall != 0 && steps - progress_at > problem.stall) {
          stalled = true;
          break;
        }
        int32_t c = arena[l.pos++];
        KState next;
        uint64_t na = ha, nb = hb;
        Used nu = used;
        int32_t taking = -1;  // an unknown op taking effect
        // Pending ops are only worth applying for an answered op that follows: one that blindly
        // overwrites a skippable pending op's effect makes that one useless (skipping it leaves
        // it available and the state no more constrained, and the search tries that too).
        if (l.after_pending && is_pending(c) &&
            (c < 0 || d.ops[members[nodes[c].m]].type != OpType::kCas)) {
          continue;
        }
        if (c < 0) {
          Step(state, PoolOp(pool_of(c)), &next);
          if (next == state) continue;  // no effect: keeping it available is as good
          ++nu[pool_of(c)];
        } else {
          const int32_t m = nodes[c].m;
          const KOp& k = d.ops[members[m]];
          if (!Step(state, k, &next)) continue;
          if (pending[m]) {
            if (next == state) continue;
            if (k.unknown) taking = static_cast<int32_t>(members[m]);
          } else {
            na ^= za[m];
            nb ^= zb[m];
          }
        }
        if (taking >= 0) {
          applied.insert(std::lower_bound(applied.begin(), applied.end(), uint32_t(taking)),
                         uint32_t(taking));
        }
        if (memo.Seen({na ^ next.Hash(0x1234), nb ^ next.Hash(0xabcdef)}, nu, applied)) {
          if (taking >= 0) {
            applied.erase(std::lower_bound(applied.begin(), applied.end(), uint32_t(taking)));
          }
          continue;
        }
        l.chosen = c;
        l.prev = state;
        state = next;
        ha = na;
        hb = nb;
        used = nu;
        if (c >= 0) {
          unlink(c);
          if (nodes[c].ret >= 0) {
            unlink(nodes[c].ret);
            if (target[nodes[c].m]) --remaining;
          }
        }
        descended = true;
        break;
      }
      if (steps > budget || stalled) {
        verdict = Verdict::kBudget;
        break;
      }
      if (descended) {
        push_level();
        continue;
      }
      // Nothing more fits here: drop this level and undo the parent's choice.
      arena.resize(l.begin);
      levels.pop_back();
      if (levels.empty()) break;
      Level& p = levels.back();
      const int32_t c = p.chosen;
      if (c < 0) {
        --used[pool_of(c)];
      } else {
        const int32_t m = nodes[c].m;
        if (nodes[c].ret >= 0) {
          relink(nodes[c].ret);
          if (target[m]) ++remaining;
        }
        relink(c);
        if (pending[m]) {
          if (d.ops[members[m]].unknown)
            applied.erase(std::lower_bound(applied.begin(), applied.end(), members[m]));
        } else {
          ha ^= za[m];
          hb ^= zb[m];
        }
      }
      state = p.prev;
    }
    if (verdict != Verdict::kFail) break;
    levels.clear();
    arena.clear();
    for (auto it = taken.rbegin(); it != taken.rend(); ++it) relink(*it);
  }
  stats->steps += steps;
  stats->memo += memo.size();
  if (verdict == Verdict::kFail && all && !ends->empty()) verdict = Verdict::kOk;
  return verdict;
}

KeyData Prepare(const std::string& key, std::vector<const Op*> src,
                const std::unordered_map<std::string, Observed>& observed) {
  KeyData d;
  d.key = key;
  d.checked = src.size();
  std::stable_sort(src.begin(), src.end(),
                   [](const Op* a, const Op* b) { return a->invoke_ns < b->invoke_ns; });
  // Every value the key's ops write, read or compare with, interned once.
  auto is_write = [](const Op* op) { return op->type == OpType::kPut || op->type == OpType::kCas; };
  auto compares = [](const Op* op) {
    return op->type == OpType::kCas && op->cas_on == CasOn::kValue && !op->expect_absent;
  };
  // A conditional delete whose compare was false changed nothing and read the key (its failure
  // branch): to the model it is a read. One that held is a plain delete; one with no answer is
  // taken as an unconditional unknown delete, which allows more than it could do.
  auto reads = [](const Op* op) {
    return op->type == OpType::kGet ||
           (op->conditional && op->outcome == Outcome::kOk && !op->succeeded);
  };
  struct Ids {
    uint32_t value = 0, read = 0, expect = 0;
  };
  std::vector<Ids> ids(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    const Op* op = src[i];
    if (is_write(op)) ids[i].value = d.values.Id(op->value);
    if (reads(op) && op->found) ids[i].read = d.values.Id(op->read_value);
    if (compares(op)) ids[i].expect = d.values.Id(op->expect_value);
  }
  struct ValueInfo {
    int writers = 0;
    int32_t writer = -1;  // index into src of the (last) writer
    bool mentioned = false;
    int64_t read_at = 0;  // the mod revision the first read of it saw
    int64_t mentioned_until = std::numeric_limits<int64_t>::min();
  };
  std::vector<ValueInfo> info(d.values.size() + 1);
  for (size_t i = 0; i < src.size(); ++i) {
    const Op* op = src[i];
    if (reads(op) && op->found) {
      ValueInfo& v = info[ids[i].read];
      v.mentioned = true;
      if (v.read_at == 0) v.read_at = op->read_mod_revision;
      v.mentioned_until = std::max(v.mentioned_until, op->invoke_ns);
    }
    if (compares(op)) {
      ValueInfo& v = info[ids[i].expect];
      v.mentioned = true;
      // An unknown compare may apply any time: its value matters for ever.
      v.mentioned_until =
          op->outcome == Outcome::kUnknown ? kNever : std::max(v.mentioned_until, op->invoke_ns);
    }
    if (is_write(op)) {
      ++info[ids[i].value].writers;
      info[ids[i].value].writer = static_cast<int32_t>(i);
    }
  }
  // Values a watch or the final read saw, where no read of the key did: the same proof.
  std::vector<uint8_t> seen_by(info.size(), 0);  // 1 read, 2 watch, 3 final
  for (size_t id = 1; id < info.size(); ++id) {
    if (info[id].read_at > 0) {
      seen_by[id] = 1;
      continue;
    }
    if (observed.empty()) continue;
    auto it = observed.find(std::string(d.values.Raw(static_cast<uint32_t>(id))));
    if (it == observed.end() || it->second.mod_revision <= 0) continue;
    info[id].read_at = it->second.mod_revision;
    info[id].mentioned = true;
    seen_by[id] = it->second.by_watch ? 2 : 3;
  }
  std::vector<int32_t> op_index(src.size(), -1);  // src index -> KeyData::ops index
  for (size_t i = 0; i < src.size(); ++i) {
    const Op* op = src[i];
    const bool unknown = op->outcome == Outcome::kUnknown;
    if (unknown) ++d.unknown.ops;
    if (unknown && op->type == OpType::kDelete) {
      d.pools[kPoolDeletes].ops.push_back(op);
      d.pools[kPoolDeletes].invokes.push_back(op->invoke_ns);
      continue;
    }
    const ValueInfo& v = info[ids[i].value];  // id 0 (no value) for gets and deletes
    const bool unique = is_write(op) && v.writers == 1;
    const bool anonymous = unique && !v.mentioned;
    const bool creates =
        op->type == OpType::kCas &&
        (op->cas_on == CasOn::kValue ? op->expect_absent : op->expect_mod_revision == 0);
    // An unknown compare with a value nobody wrote never held: it had no effect.
    if (unknown && compares(op) && info[ids[i].expect].writers == 0) {
      ++d.unknown.no_effect;
      continue;
    }
    if (unknown && anonymous && (op->type == OpType::kPut || creates)) {
      Pool& pool = d.pools[op->type == OpType::kPut ? kPoolPuts : kPoolCreates];
      pool.ops.push_back(op);
      pool.invokes.push_back(op->invoke_ns);
      continue;
    }
    KOp k;
    k.src = op;
    k.type = reads(op) ? OpType::kGet : op->type;
    k.invoke = op->invoke_ns;
    k.cas_on = op->cas_on;
    k.expect_absent = op->expect_absent;
    k.expect_mod_revision = op->expect_mod_revision;
    // Only unknown writes are made anonymous: an answered one keeps its value for the report
    // (its revision tells its states apart anyway).
    k.value = unknown && anonymous ? kJunk : ids[i].value;
    k.expect = ids[i].expect;
    k.read_value = ids[i].read;
    if (!unknown) {
      k.role = Role::kAnswered;
      k.ret = op->return_ns;
      k.revision = op->revision;
      k.found = op->found;
      k.succeeded = op->succeeded;
      k.deleted = op->deleted;
      k.read_mod_revision = op->read_mod_revision;
    } else {
      k.role = Role::kPending;
      if (unique && v.read_at > 0) {
        // A read saw this value, which only this op wrote: it happened, at that revision.
        k.revision = v.read_at;
        k.succeeded = true;
        switch (seen_by[ids[i].value]) {
          case 2:
            ++d.unknown.proven_by_watch;
            break;
          case 3:
            ++d.unknown.proven_by_final;
            break;
          default:
            ++d.unknown.proven_by_read;
            break;
        }
      } else {
        k.unknown = true;
        if (op->type == OpType::kPut && unique) k.mentioned_until = v.mentioned_until;
      }
    }
    op_index[i] = static_cast<int32_t>(d.ops.size());
    d.ops.push_back(k);
  }
  for (size_t id = 1; id < info.size(); ++id) {
    if (info[id].writers == 1) d.writer[static_cast<uint32_t>(id)] = src[info[id].writer];
  }
  for (KOp& k : d.ops) {
    if (k.type == OpType::kGet && k.found && info[k.read_value].writers == 1) {
      // The revision the value's only writer wrote it at, if known.
      int32_t w = op_index[info[k.read_value].writer];
      if (w >= 0 && !d.ops[w].unknown && (d.ops[w].type == OpType::kPut || d.ops[w].succeeded)) {
        k.read_written_at = d.ops[w].revision;
      }
    }
    if (k.unknown && k.type == OpType::kCas && k.expect != 0 && info[k.expect].writers == 1) {
      int32_t w = op_index[info[k.expect].writer];
      if (w >= 0 && !d.ops[w].unknown) k.expect_writer = w;
    }
  }
  return d;
}

std::string Describe(const KeyData& d, const KState& s) {
  if (s.wild) return "any state";
  std::string out = s.present ? d.values.Name(s.value) : "absent";
  if (s.present) {
    out += s.rev > 0 ? " @ mod_revision " + std::to_string(s.rev) : " (mod_revision unknown)";
  }
  if (s.floor > 0) out += ", store revision >= " + std::to_string(s.floor);
  return out;
}

// Any state, with the store revision at `floor` or beyond.
std::vector<Config> WildStart(int64_t floor) {
  return {Config{KState{false, true, 0, 0, floor}, {}, {}}};
}

}  // namespace faultline::verify::lin
