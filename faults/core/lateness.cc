#include "faults/core/lateness.h"

#include <bit>
#include <cstdio>

namespace faultline::faults {
namespace {

constexpr uint64_t kSub = uint64_t{1} << Lateness::kSubBits;

std::string Ms(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f ms", static_cast<double>(ns) / 1e6);
  return buf;
}

}  // namespace

int Lateness::Bucket(uint64_t v) {
  if (v < kSub) return static_cast<int>(v);
  const int msb = 63 - std::countl_zero(v);
  const int shift = msb - kSubBits;
  const uint64_t sub = (v >> shift) & (kSub - 1);
  return static_cast<int>((static_cast<uint64_t>(shift + 1) << kSubBits) + sub);
}

int64_t Lateness::Midpoint(int b) {
  if (b < static_cast<int>(kSub)) return b;
  const int shift = (b >> kSubBits) - 1;
  const uint64_t sub = static_cast<uint64_t>(b) & (kSub - 1);
  const uint64_t low = (kSub + sub) << shift;
  return static_cast<int64_t>(low + ((uint64_t{1} << shift) >> 1));
}

void Lateness::Record(int64_t late_ns) {
  if (late_ns < 0) late_ns = 0;
  buckets_[static_cast<size_t>(Bucket(static_cast<uint64_t>(late_ns)))].fetch_add(
      1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  int64_t m = max_.load(std::memory_order_relaxed);
  while (late_ns > m && !max_.compare_exchange_weak(m, late_ns, std::memory_order_relaxed)) {
  }
}

Lateness::Summary Lateness::Summarize() const {
  Summary s;
  std::array<uint64_t, kBuckets> snap;
  uint64_t total = 0;
  for (size_t i = 0; i < snap.size(); ++i) {
    snap[i] = buckets_[i].load(std::memory_order_relaxed);
    total += snap[i];
  }
  s.count = static_cast<int64_t>(total);
  s.max_ns = max_.load(std::memory_order_relaxed);
  if (total == 0) return s;
  auto quantile = [&](double q) {
    // The smallest value with at least q of the samples at or below it (nearest rank).
    auto rank = static_cast<uint64_t>(q * static_cast<double>(total) + 0.999999);
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (int b = 0; b < kBuckets; ++b) {
      seen += snap[static_cast<size_t>(b)];
      if (seen >= rank) return std::min(Midpoint(b), s.max_ns);
    }
    return s.max_ns;
  };
  s.p50_ns = quantile(0.50);
  s.p99_ns = quantile(0.99);
  return s;
}

void Lateness::AddCounters(Counters& c, const std::string& prefix) const {
  AddCounters(Summarize(), c, prefix);
}

void Lateness::AddCounters(const Summary& s, Counters& c, const std::string& prefix) {
  c[prefix + "late_samples"] = s.count;
  c[prefix + "late_p50_us"] = s.p50_ns / 1000;
  c[prefix + "late_p99_us"] = s.p99_ns / 1000;
  c[prefix + "late_max_us"] = s.max_ns / 1000;
}

std::string Lateness::Describe() const {
  Summary s = Summarize();
  if (s.count == 0) return "nothing released yet";
  return std::to_string(s.count) + " released, late p50 " + Ms(s.p50_ns) + ", p99 " + Ms(s.p99_ns) +
         ", max " + Ms(s.max_ns);
}

std::string DescribeLatenessCounters(const std::map<std::string, int64_t>& c) {
  auto get = [&](const char* k) -> int64_t {
    auto it = c.find(k);
    return it == c.end() ? -1 : it->second;
  };
  const int64_t n = get("late_samples"), p50 = get("late_p50_us"), p99 = get("late_p99_us"),
                max = get("late_max_us");
  if (n < 0 || p50 < 0 || p99 < 0 || max < 0) return "";
  std::string out = "delay accuracy: " + std::to_string(n) + " released, late p50 " +
                    Ms(p50 * 1000) + ", p99 " + Ms(p99 * 1000) + ", max " + Ms(max * 1000);
  if (auto rt = get("release_realtime"); rt == 0) out += " (release thread not real-time)";
  return out;
}

}  // namespace faultline::faults
