#include "faults/core/lateness.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

namespace faultline::faults {
namespace {

TEST(Lateness, BucketsAreMonotonicAndMidpointsWithinResolution) {
  int last = -1;
  for (uint64_t v = 0; v < (uint64_t{1} << 40); v = v < 64 ? v + 1 : v + v / 7) {
    const int b = Lateness::Bucket(v);
    ASSERT_GE(b, last) << v;
    ASSERT_LT(b, Lateness::kBuckets);
    last = b;
    const auto mid = static_cast<double>(Lateness::Midpoint(b));
    ASSERT_NEAR(mid, static_cast<double>(v), static_cast<double>(v) / 16 + 1) << v;
  }
  EXPECT_LT(Lateness::Bucket(UINT64_MAX), Lateness::kBuckets);
}

TEST(Lateness, PercentilesOfAKnownDistribution) {
  Lateness l;
  // 1..1000 us: p50 500 us, p99 990 us, max 1000 us.
  for (int us = 1000; us >= 1; --us) l.Record(int64_t{us} * 1000);
  auto s = l.Summarize();
  EXPECT_EQ(s.count, 1000);
  EXPECT_EQ(s.max_ns, 1'000'000);
  EXPECT_NEAR(static_cast<double>(s.p50_ns), 500'000, 500'000 / 32.0 + 1);
  EXPECT_NEAR(static_cast<double>(s.p99_ns), 990'000, 990'000 / 32.0 + 1);
  EXPECT_LE(s.p99_ns, s.max_ns);
  Counters c;
  l.AddCounters(c);
  EXPECT_EQ(c["late_samples"], 1000);
  EXPECT_EQ(c["late_max_us"], 1000);
  EXPECT_EQ(c["late_p50_us"], s.p50_ns / 1000);
  EXPECT_NE(l.Describe().find("1000 released, late p50 0."), std::string::npos) << l.Describe();
  c["release_realtime"] = 0;
  EXPECT_EQ(DescribeLatenessCounters(c).rfind("delay accuracy: 1000 released", 0), 0u);
  EXPECT_NE(DescribeLatenessCounters(c).find("not real-time"), std::string::npos);
}

TEST(Lateness, EarlyCountsAsOnTimeAndEmptyIsSaid) {
  Lateness l;
  EXPECT_EQ(l.Describe(), "nothing released yet");
  EXPECT_EQ(DescribeLatenessCounters({{"matched", 3}}), "");
  l.Record(-5000);
  auto s = l.Summarize();
  EXPECT_EQ(s.count, 1);
  EXPECT_EQ(s.max_ns, 0);
  EXPECT_EQ(s.p99_ns, 0);
}

TEST(Lateness, ConcurrentRecordersLoseNothing) {
  Lateness l;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&l, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t));
      for (int i = 0; i < 20000; ++i) l.Record(static_cast<int64_t>(rng() % 5'000'000));
    });
  }
  for (auto& t : threads) t.join();
  auto s = l.Summarize();
  EXPECT_EQ(s.count, 80000);
  EXPECT_LT(s.max_ns, 5'000'000);
  EXPECT_NEAR(static_cast<double>(s.p50_ns), 2'500'000, 200'000);
}

}  // namespace
}  // namespace faultline::faults
