#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "faults/core/fault.h"

namespace faultline::faults {

// How late a delay fault released what it held (a FUSE reply, a packet), over the fault's life:
// the configured delay is what the user asked for, this is how far reality was off. Recording is
// wait-free and allocation-free (fixed log-linear buckets of relaxed atomics), so the release
// thread pays a few nanoseconds; readers get percentiles within 1/32 of the value (bucket
// midpoints, 16 buckets per power of two) and the exact maximum.
class Lateness {
 public:
  void Record(int64_t late_ns);

  struct Summary {
    int64_t count = 0;
    int64_t p50_ns = 0, p99_ns = 0, max_ns = 0;
  };
  Summary Summarize() const;

  // Adds "<prefix>late_samples" (releases timed), "<prefix>late_p50_us", "..._p99_us", "..._max_us"
  // to `c`.
  void AddCounters(Counters& c, const std::string& prefix = "") const;
  // The same from a summary carried elsewhere (the overlay process reports its rules' lateness
  // to the agent as summaries).
  static void AddCounters(const Summary& s, Counters& c, const std::string& prefix = "");
  // "1234 released, late p50 0.04 ms, p99 0.31 ms, max 1.20 ms" (or "nothing released yet").
  std::string Describe() const;

  static constexpr int kSubBits = 4;
  static constexpr int kBuckets = 64 << kSubBits;
  static int Bucket(uint64_t v);
  // The midpoint of bucket `b`'s range.
  static int64_t Midpoint(int b);

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> max_{0};
};

// Lateness counters as the agent reports them, back in words (for the CLI, the timeline and the
// report): "" when `counters` has none.
std::string DescribeLatenessCounters(const std::map<std::string, int64_t>& counters);

}  // namespace faultline::faults
