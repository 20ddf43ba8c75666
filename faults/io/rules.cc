#include "faults/io/rules.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>

#include "faults/core/rng.h"
#include "faults/io/glob.h"

namespace faultline::faults::io {
namespace {

constexpr std::array<std::string_view, static_cast<size_t>(Method::kCount)> kMethodNames = {
    "lookup",    "getattr",  "setattr",  "open",      "create",      "read",    "write",
    "flush",     "release",  "fsync",    "fdatasync", "fsyncdir",    "mkdir",   "rmdir",
    "unlink",    "rename",   "link",     "symlink",   "readlink",    "readdir", "statfs",
    "fallocate", "getxattr", "setxattr", "listxattr", "removexattr", "mknod",   "opendir"};

struct ErrnoName {
  std::string_view name;
  int value;
};
constexpr ErrnoName kErrnos[] = {
    {"EIO", EIO},
    {"ENOSPC", ENOSPC},
    {"EROFS", EROFS},
    {"EDQUOT", EDQUOT},
    {"EAGAIN", EAGAIN},
    {"EINTR", EINTR},
    {"ENOENT", ENOENT},
    {"EACCES", EACCES},
    {"EPERM", EPERM},
    {"EBUSY", EBUSY},
    {"EEXIST", EEXIST},
    {"EFBIG", EFBIG},
    {"EMFILE", EMFILE},
    {"ENFILE", ENFILE},
    {"ENOMEM", ENOMEM},
    {"ENOTDIR", ENOTDIR},
    {"EISDIR", EISDIR},
    {"EINVAL", EINVAL},
    {"ENAMETOOLONG", ENAMETOOLONG},
    {"ENOTEMPTY", ENOTEMPTY},
    {"ESTALE", ESTALE},
    {"ETIMEDOUT", ETIMEDOUT},
    {"ENODATA", ENODATA},
    {"EBADF", EBADF},
    {"ENXIO", ENXIO},
    {"EMLINK", EMLINK},
    {"ETXTBSY", ETXTBSY},
    {"EOVERFLOW", EOVERFLOW},
    {"ENOLCK", ENOLCK},
    {"ENOTSUP", ENOTSUP},
};

uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::optional<MethodMask> ParseMethod(std::string_view name) {
  if (name == "fsync") return Bit(Method::kFsync) | Bit(Method::kFdatasync);
  if (name == "readdirplus") return Bit(Method::kReaddir);
  for (size_t i = 0; i < kMethodNames.size(); ++i) {
    if (kMethodNames[i] == name) return Bit(static_cast<Method>(i));
  }
  return std::nullopt;
}

std::string_view MethodName(Method m) { return kMethodNames.at(static_cast<size_t>(m)); }

MethodMask ApplicableMethods(int kind) {
  MethodMask all = (MethodMask{1} << static_cast<uint32_t>(Method::kCount)) - 1;
  switch (static_cast<RuleKind>(kind)) {
    case RuleKind::kShort:
      return Bit(Method::kRead) | Bit(Method::kWrite);
    case RuleKind::kCorrupt:
      return Bit(Method::kRead) | Bit(Method::kWrite);
    case RuleKind::kAttr:
      return Bit(Method::kGetattr) | Bit(Method::kLookup);
    case RuleKind::kEnospcAfter:
      return Bit(Method::kWrite) | Bit(Method::kFallocate);
    case RuleKind::kLoseUnsynced:
      // What changes file data (tracked) and what makes it durable (clears the tracking).
      return Bit(Method::kWrite) | Bit(Method::kFallocate) | Bit(Method::kSetattr) |
             Bit(Method::kFsync) | Bit(Method::kFdatasync);
    case RuleKind::kTornWrite:
      return Bit(Method::kWrite);
    case RuleKind::kTornSequence:
      return Bit(Method::kWrite) | Bit(Method::kFsync) | Bit(Method::kFdatasync);
    case RuleKind::kSkipSync:
      return Bit(Method::kFsync) | Bit(Method::kFdatasync) | Bit(Method::kFsyncdir);
    case RuleKind::kCrashAt:
      return Bit(Method::kWrite) | Bit(Method::kFsync) | Bit(Method::kFdatasync);
    default:
      return all;
  }
}

std::optional<int> ParseErrno(std::string_view name) {
  for (const auto& e : kErrnos) {
    if (e.name == name) return e.value;
  }
  return std::nullopt;
}

std::string_view RuleKindName(RuleKind k) {
  switch (k) {
    case RuleKind::kLatency:
      return "latency";
    case RuleKind::kErrno:
      return "errno";
    case RuleKind::kShort:
      return "short";
    case RuleKind::kCorrupt:
      return "corrupt";
    case RuleKind::kAttr:
      return "attr";
    case RuleKind::kEnospcAfter:
      return "enospc-after";
    case RuleKind::kLoseUnsynced:
      return "lose-unsynced";
    case RuleKind::kTornWrite:
      return "torn-write";
    case RuleKind::kTornSequence:
      return "torn-sequence";
    case RuleKind::kCrashAt:
      return "crash-at";
    case RuleKind::kSkipSync:
      return "skip-sync";
  }
  return "unknown";
}

bool IsCrashKind(RuleKind k) {
  return k == RuleKind::kTornWrite || k == RuleKind::kTornSequence || k == RuleKind::kCrashAt;
}

bool Rule::TakeCrash() {
  // Counted apart from acted_ (which max_count may cap): the Nth firing crashes, exactly once.
  int64_t at = std::max<int64_t>(spec_.crash_at_op, 1);
  return crash_fires_.fetch_add(1, std::memory_order_relaxed) + 1 == at;
}

std::vector<bool> Rule::ChooseKept(size_t n) const {
  std::vector<bool> kept(n, false);
  if (!spec_.keep.empty()) {
    for (uint32_t k : spec_.keep) {
      if (k < n) kept[k] = true;
    }
    return kept;
  }
  if (n <= 1) return kept;  // one part: the tear loses it
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) {
    kept[i] = (Random(static_cast<uint64_t>(i), 9) & 1) != 0;
    count += kept[i];
  }
  // Neither nothing nor everything: force one seeded index the other way.
  if (count == 0 || count == n) {
    size_t flip = Random(n, 10) % n;
    kept[flip] = !kept[flip];
  }
  return kept;
}

Rule::Rule(uint64_t id, RuleSpec spec) : id_(id), spec_(std::move(spec)) {
  if (spec_.methods == 0) spec_.methods = ApplicableMethods(static_cast<int>(spec_.kind));
  for (auto& [e, w] : spec_.errnos) weight_total_ += w;
  space_left_ = spec_.enospc_after_bytes;
}

bool Rule::Matches(Method m, std::string_view path) const {
  return (spec_.methods & Bit(m)) != 0 && GlobMatch(spec_.path_glob, path);
}

std::optional<uint64_t> Rule::Fire() {
  uint64_t n = static_cast<uint64_t>(matched_.fetch_add(1, std::memory_order_relaxed));
  if (spec_.percent < 100) {
    // One independent draw per match index: deterministic for a given op order, and no lock
    // (a shared Rng would need one).
    double u = static_cast<double>(Random(n, 0) >> 11) * 0x1.0p-53;
    if (u * 100.0 >= spec_.percent) return std::nullopt;
  }
  if (spec_.max_count > 0) {
    int64_t cur = acted_.load(std::memory_order_relaxed);
    do {
      if (cur >= spec_.max_count) return std::nullopt;
    } while (!acted_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
  } else {
    acted_.fetch_add(1, std::memory_order_relaxed);
  }
  return n;
}

uint64_t Rule::Random(uint64_t n, uint64_t k) const {
  return Mix(spec_.seed ^ Mix(n * 0x9e3779b97f4a7c15ULL + k + 1));
}

std::chrono::nanoseconds Rule::PickDelay(uint64_t n) const {
  double d = static_cast<double>(spec_.delay.count());
  double j = static_cast<double>(spec_.jitter.count());
  switch (spec_.distribution) {
    case Distribution::kFixed:
      break;
    case Distribution::kUniform: {
      double u = static_cast<double>(Random(n, 1) >> 11) * 0x1.0p-53;
      d += (2 * u - 1) * j;
      break;
    }
    case Distribution::kNormal: {
      double u1 = std::max(static_cast<double>(Random(n, 1) >> 11) * 0x1.0p-53, 1e-300);
      double u2 = static_cast<double>(Random(n, 2) >> 11) * 0x1.0p-53;
      d += j * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
      break;
    }
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(std::max(d, 0.0)));
}

int Rule::PickErrno(uint64_t n) const {
  if (spec_.errnos.empty()) return EIO;
  uint64_t x = Random(n, 3) % weight_total_;
  for (const auto& [e, w] : spec_.errnos) {
    if (x < w) return e;
    x -= w;
  }
  return spec_.errnos.back().first;
}

uint64_t Rule::TakeSpace(uint64_t want) {
  uint64_t cur = space_left_.load(std::memory_order_relaxed);
  uint64_t take;
  do {
    take = std::min(cur, want);
  } while (!space_left_.compare_exchange_weak(cur, cur - take, std::memory_order_relaxed));
  return take;
}

size_t Rule::Corrupt(uint64_t n, char* buf, size_t len) const {
  if (len == 0) return 0;
  size_t count = std::min<size_t>(std::max<uint32_t>(spec_.corrupt_max_bytes, 1), len);
  // Pick `count` distinct-enough offsets; a run of bytes at a seeded offset keeps it cheap and
  // still lands inside one record for checksummed formats.
  size_t start = Random(n, 4) % (len - count + 1);
  for (size_t i = 0; i < count; ++i) {
    char& c = buf[start + i];
    switch (spec_.corrupt_mode) {
      case CorruptMode::kFlip:
        c = static_cast<char>(~c);
        break;
      case CorruptMode::kZero:
        c = 0;
        break;
      case CorruptMode::kRandom: {
        char r = static_cast<char>(Random(n, 5 + i));
        c = r == c ? static_cast<char>(~c) : r;  // always a change, so the effect is provable
        break;
      }
    }
  }
  return count;
}

size_t Rule::ShortLength(size_t len) const {
  if (len == 0) return 0;
  size_t out = len;
  if (spec_.short_bytes > 0) {
    out = std::min<uint64_t>(spec_.short_bytes, len - 1);
  } else if (spec_.short_fraction > 0) {
    out = static_cast<size_t>(static_cast<double>(len) * spec_.short_fraction);
    if (out >= len) out = len - 1;
  }
  return out;
}

Decision Decide(const RuleSet& set, Method m, std::string_view path) {
  Decision d;
  if ((set.methods & Bit(m)) == 0) return d;
  // Pass 1: what can fail the op. Pass 2: what shapes or delays it. Two passes so a shaping
  // rule never counts as acted on an op that an errno rule (armed later) failed.
  for (int pass = 1; pass <= 2; ++pass) {
    for (const auto& r : set.rules) {
      auto kind = r->spec().kind;
      if (kind == RuleKind::kLoseUnsynced) {
        // Tracking is not a draw: every write of a matching file is tracked.
        if (pass == 1 && r->Matches(m, path)) d.track = true;
        continue;
      }
      bool failing = kind == RuleKind::kErrno || kind == RuleKind::kEnospcAfter;
      if (failing != (pass == 1)) continue;
      if (pass == 2 && d.err != 0 && kind != RuleKind::kLatency) continue;
      if (pass == 1 && (d.err != 0 || (kind == RuleKind::kEnospcAfter && d.enospc))) continue;
      if (!r->Matches(m, path)) continue;
      if (kind == RuleKind::kTornSequence) {
        d.track = true;
        d.record = true;
        // Only syncs count towards at_op: the tear happens at a sync.
        if (m == Method::kWrite) continue;
      }
      if (IsCrashKind(kind) && d.crash != nullptr) continue;  // one crash per op
      auto n = r->Fire();
      if (!n) continue;
      switch (kind) {
        case RuleKind::kErrno:
          d.err = r->PickErrno(*n);
          r->CountEffect(1);
          break;
        case RuleKind::kEnospcAfter:
          d.enospc = r.get();
          break;
        case RuleKind::kLatency: {
          auto delay = r->PickDelay(*n);
          d.delay += delay;
          r->CountEffect(delay.count());
          for (auto& slot : d.delayed_by) {
            if (slot == nullptr) {
              slot = r.get();
              break;
            }
          }
          break;
        }
        case RuleKind::kSkipSync:
          d.skip_sync = r.get();
          r->CountEffect(1);
          break;
        case RuleKind::kCrashAt:
        case RuleKind::kTornWrite:
        case RuleKind::kTornSequence:
          if (r->TakeCrash()) d.crash = r.get();
          break;
        default:
          d.shaping.emplace_back(r.get(), *n);
          break;
      }
    }
  }
  return d;
}

}  // namespace faultline::faults::io
