#include "controller/etcd/linearizability.h"

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>
#include <unordered_map>

namespace faultline::controller::etcd {

namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// The value of a write no op of the key mentions: no read or compare can tell two apart.
constexpr uint32_t kJunk = std::numeric_limits<uint32_t>::max();

// A stateless mixer: hashing, not randomness (nothing here needs a seed).
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct KState {
  bool present = false;
  // Nothing known yet: the state a window cut out of the middle of a history starts in. The
  // first op that observes the key pins it; every state is possible until then.
  bool wild = false;
  uint32_t value = 0;
  int64_t rev = 0;    // revision of the last change; 0 = unknown (written by an unknown op)
  int64_t floor = 0;  // the store revision is known to have reached this (response headers)
  bool operator==(const KState&) const = default;
  uint64_t Hash(uint64_t salt) const {
    return Mix(salt ^ Mix((present ? 1ULL << 63 : 0) ^ (wild ? 1ULL << 62 : 0) ^ value) ^
               Mix(static_cast<uint64_t>(rev)) ^
               Mix(static_cast<uint64_t>(floor) * 0x9e3779b97f4a7c15ULL));
  }
};

// An absent key's last revision never matters (it is at most the floor, which every check
// already covers), so absent states are all one.
KState Known(bool present, uint32_t value, int64_t rev, int64_t floor) {
  return present ? KState{true, false, value, rev, floor} : KState{false, false, 0, 0, floor};
}

// How an op enters the search. Ops with an answer must be linearized before their return; the
// others are pending forever: they may take effect any time after their invocation, or never.
enum class Role : uint8_t { kAnswered, kPending };

// One op of a key, with values interned to small ids and the response fields the model reads.
struct KOp {
  const Op* src = nullptr;
  Role role = Role::kAnswered;
  OpType type = OpType::kGet;
  // The response is unknown: the op may have had its effect or not. False for answered ops and
  // for unknown writes a read proved (their revision is the one the read reported).
  bool unknown = false;
  bool found = false;
  bool succeeded = false;
  bool expect_absent = false;
  CasOn cas_on = CasOn::kValue;
  uint32_t value = 0, expect = 0, read_value = 0;
  int64_t deleted = 0;
  int64_t expect_mod_revision = 0;
  int64_t revision = 0;
  int64_t read_mod_revision = 0;
  // get: the revision the only writer of the value read wrote it at (0: not known), so that a
  // read that misreports it is refuted even from the unknown state.
  int64_t read_written_at = 0;
  // Tracked unknown put: no op invoked after this mentions its value, so from then on it is as
  // good as a pooled one (kNever: never).
  int64_t mentioned_until = kNever;
  // Tracked unknown cas on a value: the answered or proven write of the value it expects
  // (KeyData::ops index), or -1. Once that write is behind every configuration and none holds the
  // value, the compare can never hold again.
  int32_t expect_writer = -1;
  int64_t invoke = 0;
  int64_t ret = kNever;  // answered ops only
  // An answered op that changed the key.
  bool Mutates() const {
    return role == Role::kAnswered &&
           (type == OpType::kPut || (type == OpType::kCas && succeeded) ||
            (type == OpType::kDelete && deleted > 0));
  }
};

// Unknown writes that no op can tell apart, by invocation time: the search only counts how many
// took effect. Using the earliest-invoked ones first loses nothing: all of them stay available
// from their invocation on, so which one was used never matters later.
struct Pool {
  std::vector<const Op*> ops;
  std::vector<int64_t> invokes;
  uint32_t InvokedBy(int64_t t) const {
    return static_cast<uint32_t>(std::upper_bound(invokes.begin(), invokes.end(), t) -
                                 invokes.begin());
  }
  void Add(const Op* op) {
    size_t at = std::upper_bound(invokes.begin(), invokes.end(), op->invoke_ns) - invokes.begin();
    invokes.insert(invokes.begin() + at, op->invoke_ns);
    ops.insert(ops.begin() + at, op);
  }
};

// The kinds of interchangeable unknown ops: puts of a value no op mentions, deletes, and
// compare-and-sets on absence writing a value no op mentions ("creates").
enum PoolKind { kPoolPuts, kPoolDeletes, kPoolCreates, kPoolKinds };
using Pools = std::array<Pool, kPoolKinds>;
// How many of each pool took effect.
using Used = std::array<uint32_t, kPoolKinds>;

// `a` leaves at least what `b` leaves for the future. A put can stand in for a create (it
// writes whether or not the key exists), so a put more left makes up for a create less.
bool AtMost(const Used& a, const Used& b) {
  return a[kPoolPuts] <= b[kPoolPuts] && a[kPoolDeletes] <= b[kPoolDeletes] &&
         a[kPoolPuts] + a[kPoolCreates] <= b[kPoolPuts] + b[kPoolCreates];
}

// Values as small ids from 1 (views into the history, which outlives the check).
class Interner {
 public:
  uint32_t Id(std::string_view s) {
    auto [it, fresh] = ids_.try_emplace(s, static_cast<uint32_t>(names_.size() + 1));
    if (fresh) names_.push_back(s);
    return it->second;
  }
  size_t size() const { return names_.size(); }
  std::string Name(uint32_t id) const {
    if (id == kJunk) return "a value no op reads (from an unknown-outcome write)";
    return id == 0 || id > names_.size() ? "?" : "\"" + std::string(names_[id - 1]) + "\"";
  }

 private:
  std::unordered_map<std::string_view, uint32_t> ids_;
  std::vector<std::string_view> names_;
};

struct KeyData {
  std::string key;
  std::vector<KOp> ops;  // answered and individually tracked unknown ops, by invocation
  std::unordered_map<uint32_t, const Op*> writer;  // value id -> the one op that wrote it
  Pools pools;
  Interner values;
  size_t checked = 0;
};

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

// Where the search stands between ops: the model state and which unknown ops took effect.
// Pending ops with a known revision (proven writes, writes in flight where a window starts) are
// not listed: the state says it all, since one can apply only while the store revision is below
// its own, and applying it raises the store revision to that.
struct Config {
  KState s;
  std::vector<uint32_t> applied;  // unknown ops (KeyData::ops indices) that took effect, sorted
  Used used = {};                 // pooled unknown ops that took effect
};

// `a` can do everything `b` can: same state, and every unknown op still available to b is to a.
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

struct SearchStats {
  uint64_t steps = 0;
  uint64_t memo = 0;
};

// Where a search got furthest: fewest target ops left, the op whose return it could not pass
// there, the state, and (when asked) the ops linearized so far.
struct Trace {
  bool record_path = false;
  size_t fewest = std::numeric_limits<size_t>::max();
  int32_t blocked = -1;  // KeyData::ops index
  KState state;
  std::vector<const Op*> path;
};

enum class Verdict { kOk, kFail, kBudget };

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

// The ops one search looks at: sorted KeyData::ops indices, and the answered ones among them
// that may or may not be linearized (writes already in flight where a window starts).
struct Problem {
  std::vector<uint32_t> members;
  std::vector<uint32_t> optional;
  // Every answered op of the key after these will be linearized too (a segment of the whole
  // history): a proven write is then needed by its reader, so a state that can no longer apply
  // it is dead.
  bool rest_follows = false;
  // Give up (as if out of budget) after this many steps without linearizing more ops than ever
  // before: a search that backtracks that long is stuck. 0: never.
  uint64_t stall = 0;
};

// Wing–Gong/Lowe search over `p` from each configuration in `starts`. Done when every answered
// member returning by `cut` is linearized; members answered later were still running at the
// cut, so they may or may not be linearized (with their recorded answer). all=false: stop at the
// first way through (its end configuration goes to *ends). all=true: collect every minimal
// configuration a way through ends in, in *ends.
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
    bool after_pending = false;  // the op that led here was a pending one
  };
  auto is_pending = [&](int32_t c) { return c < 0 || pending[nodes[c].m]; };
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
    l.after_pending = !levels.empty() && is_pending(levels.back().chosen);
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
        // overwrites another pending op's effect makes that one useless (skipping it leaves it
        // available and the state no more constrained, and the search tries that too).
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

// The ops of a key that enter the search. Unknown writes are sorted into three kinds: proven by a
// read (then they happened, at the revision that read saw), interchangeable (their value is
// never mentioned: pooled), or tracked one by one.
KeyData Prepare(const std::string& key, std::vector<const Op*> src) {
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
  struct Ids {
    uint32_t value = 0, read = 0, expect = 0;
  };
  std::vector<Ids> ids(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    const Op* op = src[i];
    if (is_write(op)) ids[i].value = d.values.Id(op->value);
    if (op->type == OpType::kGet && op->found) ids[i].read = d.values.Id(op->read_value);
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
    if (op->type == OpType::kGet && op->found) {
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
  std::vector<int32_t> op_index(src.size(), -1);  // src index -> KeyData::ops index
  for (size_t i = 0; i < src.size(); ++i) {
    const Op* op = src[i];
    const bool unknown = op->outcome == Outcome::kUnknown;
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
    if (unknown && compares(op) && info[ids[i].expect].writers == 0) continue;
    if (unknown && anonymous && (op->type == OpType::kPut || creates)) {
      Pool& pool = d.pools[op->type == OpType::kPut ? kPoolPuts : kPoolCreates];
      pool.ops.push_back(op);
      pool.invokes.push_back(op->invoke_ns);
      continue;
    }
    KOp k;
    k.src = op;
    k.type = op->type;
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

// Any state, with the store revision at `floor` or beyond.
std::vector<Config> WildStart(int64_t floor) {
  return {Config{KState{false, true, 0, 0, floor}, {}, {}}};
}

// Charges steps to a key's budget.
struct Budget {
  uint64_t left;
  SearchStats* stats;
  Verdict Run(const KeyData& d, const Pools& pools, const Problem& p, int64_t cut,
              const std::vector<Config>& starts, bool all, std::vector<Config>* ends, Trace* trace,
              uint64_t cap = kNoCap) {
    uint64_t before = stats->steps;
    Verdict v = etcd::Run(d, pools, p, cut, starts, all, std::min(left, cap), stats, ends, trace);
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
  bool failed = false;
  for (const std::string& key : order) {
    KeyData d = Prepare(key, std::move(by_key[key]));
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

}  // namespace faultline::controller::etcd
