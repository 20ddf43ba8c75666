#include "faults/core/rng.h"

#include <gtest/gtest.h>

namespace faultline::faults {
namespace {

TEST(RngTest, SameSeedSameSequence) {
  Rng a(12345), b(12345);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.Next(), b.Next());
}

TEST(RngTest, KnownValuesAreStableAcrossBuilds) {
  // Pinned outputs: a change here breaks the replay of every recorded experiment.
  Rng r(42);
  EXPECT_EQ(r.Next(), 13679457532755275413ULL);
  EXPECT_EQ(r.Below(100), 15u);
}

TEST(RngTest, ForksAreIndependentOfEachOtherAndReproducible) {
  Rng root(7);
  Rng t1 = root.Fork("targets"), t2 = root.Fork("targets"), io = root.Fork("io.percent");
  EXPECT_EQ(t1.Next(), t2.Next());
  EXPECT_NE(Rng(7).Fork("targets").Next(), io.Next());
}

TEST(RngTest, BelowIsInRangeAndRoughlyUniform) {
  Rng r(1);
  std::vector<int> counts(10);
  for (int i = 0; i < 100000; ++i) {
    auto v = r.Below(10);
    ASSERT_LT(v, 10u);
    counts[v]++;
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);
}

TEST(RngTest, PercentLandsNearItsTarget) {
  Rng r(99);
  int hits = 0;
  for (int i = 0; i < 10000; ++i) hits += r.Percent(30);
  EXPECT_NEAR(hits, 3000, 200);
  EXPECT_TRUE(r.Percent(100));
  EXPECT_FALSE(r.Percent(0));
}

TEST(RngTest, SampleIsDistinctSortedAndReproducible) {
  Rng a(5), b(5);
  auto s = a.Sample(10, 4);
  EXPECT_EQ(s, b.Sample(10, 4));
  ASSERT_EQ(s.size(), 4u);
  for (size_t i = 1; i < s.size(); ++i) EXPECT_LT(s[i - 1], s[i]);
  EXPECT_EQ(Rng(1).Sample(3, 10).size(), 3u);
}

}  // namespace
}  // namespace faultline::faults
