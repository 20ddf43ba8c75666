#include "controller/runner/lease_keeper.h"

#include <gtest/gtest.h>

namespace faultline::controller {
namespace {

using namespace std::chrono_literals;

class FakeClock : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override { return now; }
  std::chrono::steady_clock::time_point now{};
};

TEST(LeaseKeeper, RenewsEveryThirdOfTheLease) {
  FakeClock clock;
  int calls = 0;
  LeaseKeeper k(clock, 15s, [&] {
    ++calls;
    return true;
  });
  EXPECT_EQ(k.interval(), 5000ms);
  clock.now += 4999ms;
  EXPECT_FALSE(k.Tick());
  clock.now += 1ms;
  EXPECT_TRUE(k.Tick());
  EXPECT_FALSE(k.Tick()) << "one renewal per interval";
  // Over a minute: 12 renewals, and never more than an interval since the last success, so a
  // fault's remaining lease never drops under two thirds.
  for (int i = 0; i < 60000; i += 100) {
    clock.now += 100ms;
    k.Tick();
    EXPECT_LE(clock.now - k.last_success(), 5000ms);
  }
  EXPECT_EQ(calls, 13);
}

TEST(LeaseKeeper, RetriesSoonAfterAFailureAndKeepsTheLeaseAlive) {
  FakeClock clock;
  int calls = 0;
  bool fail = true;
  LeaseKeeper k(
      clock, 15s,
      [&] {
        ++calls;
        return !fail;
      },
      500ms);
  clock.now += 5s;
  EXPECT_TRUE(k.Tick());
  EXPECT_EQ(k.failures(), 1);
  EXPECT_EQ(k.NextDue(), clock.now + 500ms) << "a failed renewal is retried after `retry`";
  clock.now += 500ms;
  fail = false;
  EXPECT_TRUE(k.Tick());
  EXPECT_EQ(k.last_success(), clock.now);
  EXPECT_EQ(k.NextDue(), clock.now + 5s);
  EXPECT_EQ(calls, 2);
}

TEST(LeaseKeeper, AControllerThatStopsTickingLetsTheLeaseLapse) {
  // The dead-man switch from the controller's side: without Tick no renewal happens, so the
  // agent's lease (15s from the last success) is what ends the fault.
  FakeClock clock;
  int calls = 0;
  LeaseKeeper k(clock, 15s, [&] {
    ++calls;
    return true;
  });
  clock.now += 60s;
  EXPECT_EQ(calls, 0);
  EXPECT_GT(clock.now - k.last_success(), 15s);
}

}  // namespace
}  // namespace faultline::controller
