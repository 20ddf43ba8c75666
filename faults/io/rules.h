#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faults/core/lateness.h"

namespace faultline::faults::io {

// The FUSE methods a rule can filter on, as bits so a rule's set is one word.
enum class Method : uint32_t {
  kLookup,
  kGetattr,
  kSetattr,
  kOpen,
  kCreate,
  kRead,
  kWrite,
  kFlush,
  kRelease,
  kFsync,
  kFdatasync,
  kFsyncdir,
  kMkdir,
  kRmdir,
  kUnlink,
  kRename,
  kLink,
  kSymlink,
  kReadlink,
  kReaddir,
  kStatfs,
  kFallocate,
  kGetxattr,
  kSetxattr,
  kListxattr,
  kRemovexattr,
  kMknod,
  kOpendir,
  kCount
};
using MethodMask = uint64_t;
constexpr MethodMask Bit(Method m) { return MethodMask{1} << static_cast<uint32_t>(m); }

// "fsync" -> kFsync|kFdatasync (people say fsync for both), "fdatasync" -> kFdatasync only.
// nullopt for an unknown name.
std::optional<MethodMask> ParseMethod(std::string_view name);
std::string_view MethodName(Method m);
// Methods each rule kind can act on; an empty method list means all of these.
MethodMask ApplicableMethods(int kind);

// errno by name ("EIO") or nullopt; only errnos that make sense for a filesystem op.
std::optional<int> ParseErrno(std::string_view name);

enum class RuleKind {
  kLatency = 1,
  kErrno,
  kShort,
  kCorrupt,
  kAttr,
  kEnospcAfter,
  // The crash model (see crash.h): what a power cut does to data the kernel accepted.
  kLoseUnsynced,  // track bytes written since a file's last fsync; a crash drops them
  kTornWrite,     // the Nth matching write reaches the file only in part, then the crash
  kTornSequence,  // at the Nth matching sync only chosen writes since the last one persist
  kCrashAt,       // crash before or after the Nth matching op
  kSkipSync,      // fsync/fdatasync report success without syncing (and do not count as one)
};
// True for the kinds whose effect is a crash of the overlay's users.
bool IsCrashKind(RuleKind k);
std::string_view RuleKindName(RuleKind k);
enum class Distribution { kFixed, kUniform, kNormal };
enum class CorruptMode { kFlip, kZero, kRandom };

struct AttrOverride {
  std::optional<uint64_t> size;
  std::optional<uint32_t> mode;  // permission bits; file type kept
  std::optional<int64_t> mtime, atime, ctime;
  std::optional<uint32_t> uid, gid;
  std::optional<uint64_t> nlink;
};

// What a rule does, already validated (see IoFaultFactory::Validate for the spec form).
struct RuleSpec {
  RuleKind kind = RuleKind::kLatency;
  std::string path_glob;   // see glob.h; "" = all
  MethodMask methods = 0;  // 0 = ApplicableMethods(kind)
  double percent = 100;
  int64_t max_count = 0;  // 0 = unlimited
  uint64_t seed = 0;

  std::chrono::nanoseconds delay{0}, jitter{0};
  Distribution distribution = Distribution::kFixed;
  std::vector<std::pair<int, uint32_t>> errnos;  // (errno, weight > 0)
  double short_fraction = 0;
  uint64_t short_bytes = 0;
  CorruptMode corrupt_mode = CorruptMode::kFlip;
  bool corrupt_on_write = false;
  uint32_t corrupt_max_bytes = 1;
  AttrOverride attr;
  uint64_t enospc_after_bytes = 0;

  // Crash model. at_op: the Nth firing op (after percent) triggers crash-at, torn-write and
  // torn-sequence (0 means 1); each such rule crashes once.
  int64_t crash_at_op = 1;
  bool crash_after_op = false;                // crash-at: the op happens, then the crash
  std::chrono::nanoseconds crash_after{0};    // lose-unsynced: crash this long after arming
  uint64_t max_unsynced_bytes = 64ull << 20;  // lose-unsynced/torn-sequence memory bound
  bool names = false;  // lose-unsynced/torn-sequence: directory changes are lost unless synced
  std::vector<uint64_t> tear_at;  // torn-write: split offsets inside the write
  uint32_t tear_parts = 2;        // torn-write: equal parts when tear_at is empty
  std::vector<uint32_t> keep;     // parts (torn-write) or writes (torn-sequence)
                                  // that persist; empty: a seeded choice
  // Called (on the overlay's crash thread) once a crash this rule caused or took part in is
  // complete: files rolled back, victims gone. The agent restarts the managed process here.
  std::function<void()> after_crash;
};

// One armed rule: its spec plus the counters that prove it acts. Shared between the rule set
// (read by FUSE workers) and the fault that armed it; counters are atomics so workers never
// lock.
class Rule {
 public:
  Rule(uint64_t id, RuleSpec spec);
  uint64_t id() const { return id_; }
  const RuleSpec& spec() const { return spec_; }

  bool Matches(Method m, std::string_view path) const;
  // Called for a matching op: counts it as matched, draws percent (seeded by the match index
  // so a replay with the same op order makes the same choices) and claims one of max_count.
  // Returns the draw index to derive further choices from, or nullopt if the rule passes.
  std::optional<uint64_t> Fire();
  // Deterministic random value number `k` of draw `n`.
  uint64_t Random(uint64_t n, uint64_t k) const;

  std::chrono::nanoseconds PickDelay(uint64_t n) const;
  int PickErrno(uint64_t n) const;
  // enospc-after: how many of `want` bytes may still be written (takes them from the budget).
  uint64_t TakeSpace(uint64_t want);
  // Applies the corruption to buf in place; returns the bytes changed.
  size_t Corrupt(uint64_t n, char* buf, size_t len) const;
  // How many of `len` bytes a short op transfers (at least 0, less than len when len > 0).
  size_t ShortLength(size_t len) const;

  // crash-at, torn-write, torn-sequence: true exactly once, for the op that triggers the crash.
  bool TakeCrash();
  // Which of `n` parts/writes persist: spec.keep, or a seeded subset that is neither empty nor
  // everything when n > 1 (a tear that keeps all or nothing shows nothing).
  std::vector<bool> ChooseKept(size_t n) const;

  int64_t matched() const { return matched_.load(std::memory_order_relaxed); }
  int64_t acted() const { return acted_.load(std::memory_order_relaxed); }
  void CountEffect(int64_t units) { effect_.fetch_add(units, std::memory_order_relaxed); }
  // Kind-specific effect total: delay ns, bytes corrupted, bytes withheld, errors...
  int64_t effect() const { return effect_.load(std::memory_order_relaxed); }
  // latency: how late its delayed replies went out (the overlay's release thread records it).
  Lateness& lateness() const { return lateness_; }

 private:
  uint64_t id_;
  RuleSpec spec_;
  uint64_t weight_total_ = 0;
  std::atomic<int64_t> matched_{0};
  std::atomic<int64_t> acted_{0};
  std::atomic<int64_t> effect_{0};
  std::atomic<uint64_t> space_left_{0};
  std::atomic<int64_t> crash_fires_{0};
  mutable Lateness lateness_;
};

// An immutable list of armed rules, published to the FUSE workers as one pointer.
// Order of application for one op (documented for users in io.proto):
//   1. errno and enospc-after, in arming order: the first that fires fails the op before it
//      reaches the disk (enospc-after lets a write through up to the remaining budget);
//   2. short, then corrupt, then attr: they shape a successful op's data or attributes;
//   3. latency: every firing latency rule adds its delay; the reply (success or error) is
//      held for the sum, off the worker thread.
struct RuleSet {
  std::vector<std::shared_ptr<Rule>> rules;
  MethodMask methods = 0;  // union of every rule's methods: a quick "can anything match" test
};

// What the rules decided for one op.
struct Decision {
  int err = 0;                                      // fail with this errno (step 1)
  std::chrono::nanoseconds delay{0};                // hold the reply (step 3)
  std::array<Rule*, 4> delayed_by{};                // the latency rules that fired (first 4)
  std::shared_ptr<const struct RuleSet> rules;      // keeps delayed_by alive until the release
  std::vector<std::pair<Rule*, uint64_t>> shaping;  // short/corrupt/attr rules that fired
  Rule* enospc = nullptr;                           // write must take its size from this budget
  // Crash model.
  Rule* crash = nullptr;      // crash-at or torn-write or torn-sequence that triggers now
  Rule* skip_sync = nullptr;  // an fsync/fdatasync to answer without syncing
  bool track = false;         // a lose-unsynced/torn-sequence rule watches this file
  bool record = false;        // torn-sequence: keep the write's data to re-apply if chosen
};

// Evaluates `set` for an op on `path`. Read/write data shaping is applied by the caller.
Decision Decide(const RuleSet& set, Method m, std::string_view path);

}  // namespace faultline::faults::io
