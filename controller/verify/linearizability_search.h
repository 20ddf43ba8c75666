#pragma once

// The search behind CheckLinearizability (linearizability.h), internal to it: one key's ops
// prepared for the model, the configurations the search carries, and the Wing–Gong/Lowe search
// over a set of ops. linearizability.cc cuts keys into segments and windows and explains failures.

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "controller/verify/history.h"

namespace faultline::verify::lin {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// The value of a write no op of the key mentions: no read or compare can tell two apart.
constexpr uint32_t kJunk = std::numeric_limits<uint32_t>::max();

// What the model knows about one key between two ops.
struct KState {
  bool present = false;
  // Nothing known yet: the state a window cut out of the middle of a history starts in. The
  // first op that observes the key pins it; every state is possible until then.
  bool wild = false;
  uint32_t value = 0;
  int64_t rev = 0;    // revision of the last change; 0 = unknown (written by an unknown op)
  int64_t floor = 0;  // the store revision is known to have reached this (response headers)
  bool operator==(const KState&) const = default;
  uint64_t Hash(uint64_t salt) const;
};

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
inline bool AtMost(const Used& a, const Used& b) {
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
  std::string_view Raw(uint32_t id) const { return names_[id - 1]; }
  std::string Name(uint32_t id) const {
    if (id == kJunk) return "a value no op reads (from an unknown-outcome write)";
    return id == 0 || id > names_.size() ? "?" : "\"" + std::string(names_[id - 1]) + "\"";
  }

 private:
  std::unordered_map<std::string_view, uint32_t> ids_;
  std::vector<std::string_view> names_;
};

// What the key's unknown-outcome ops turned out to be.
struct UnknownTally {
  size_t ops = 0;              // unknown writes and deletes of the key
  size_t proven_by_read = 0;   // a read saw the value: it happened, at that mod revision
  size_t proven_by_watch = 0;  // a watch event carried the value
  size_t proven_by_final = 0;  // the final read found the value
  size_t no_effect = 0;        // a compare on a value no op wrote: it can never have held
  size_t Unresolved() const {
    return ops - proven_by_read - proven_by_watch - proven_by_final - no_effect;
  }
  void Add(const UnknownTally& o) {
    ops += o.ops;
    proven_by_read += o.proven_by_read;
    proven_by_watch += o.proven_by_watch;
    proven_by_final += o.proven_by_final;
    no_effect += o.no_effect;
  }
};

// A value seen outside the key's ops (watch events, the final read), at this mod revision.
struct Observed {
  int64_t mod_revision = 0;
  bool by_watch = false;  // else the final read
};

struct KeyData {
  std::string key;
  std::vector<KOp> ops;  // answered and individually tracked unknown ops, by invocation
  std::unordered_map<uint32_t, const Op*> writer;  // value id -> the one op that wrote it
  Pools pools;
  Interner values;
  size_t checked = 0;
  UnknownTally unknown;
};

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
bool Subsumes(const Config& a, const Config& b);
// Adds `c` to a set of configurations none of which subsumes another.
void AddMinimal(std::vector<Config>* set, Config c);

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
            std::vector<Config>* ends, Trace* trace);

// The ops of a key that enter the search. Unknown writes are sorted into three kinds: proven by a
// read, a watch event or the final read (`observed`: value -> where it was seen; then they
// happened, at the revision seen), interchangeable (their value is never mentioned: pooled), or
// tracked one by one.
KeyData Prepare(const std::string& key, std::vector<const Op*> src,
                const std::unordered_map<std::string, Observed>& observed = {});

// A state for a report: "absent", "\"v3\" @ mod_revision 7, store revision >= 9", "any state".
std::string Describe(const KeyData& d, const KState& s);

// Any state, with the store revision at `floor` or beyond.
std::vector<Config> WildStart(int64_t floor);

}  // namespace faultline::verify::lin
