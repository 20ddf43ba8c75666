#include "faults/net/timer_heap.h"

#include <gtest/gtest.h>

namespace faultline::faults::net {
namespace {

TEST(TimerHeap, ReleasesByDueTimeThenArrival) {
  TimerHeap h;
  h.Push(300, 1);
  h.Push(100, 2);
  h.Push(100, 3);
  h.Push(200, 4);
  EXPECT_EQ(h.next_due(), 100);
  EXPECT_EQ(h.min_held(), 1u);
  std::vector<uint32_t> out;
  h.PopDue(99, &out);
  EXPECT_TRUE(out.empty());
  h.PopDue(200, &out);
  EXPECT_EQ(out, (std::vector<uint32_t>{2, 3, 4}));
  EXPECT_EQ(h.min_held(), 1u);
  out.clear();
  h.PopDue(1000, &out);
  EXPECT_EQ(out, (std::vector<uint32_t>{1}));
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.min_held(), UINT64_MAX);
}

TEST(VerdictPlan, BatchOnlyBelowOldestHeld) {
  // In-order release with nothing older held: one batch verdict.
  auto p = PlanVerdicts({5, 6, 7}, UINT64_MAX);
  EXPECT_TRUE(p.has_batch);
  EXPECT_EQ(p.batch_max, 7u);
  EXPECT_TRUE(p.single.empty());
  // Packet 6 is still held (jitter): 5 goes in the batch, 7 and 9 individually.
  p = PlanVerdicts({9, 5, 7}, 6);
  EXPECT_EQ(p.batch_max, 5u);
  EXPECT_EQ(p.single, (std::vector<uint32_t>{9, 7}));
  p = PlanVerdicts({8}, 3);
  EXPECT_FALSE(p.has_batch);
  EXPECT_EQ(p.single, (std::vector<uint32_t>{8}));
}

}  // namespace
}  // namespace faultline::faults::net
