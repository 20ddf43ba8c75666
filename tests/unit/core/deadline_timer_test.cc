#include "faults/core/deadline_timer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

namespace faultline::faults {
namespace {

using namespace std::chrono_literals;
using Clock = DeadlineTimer::Clock;

TEST(DeadlineTimerTest, FiresInDeadlineOrder) {
  std::mutex mu;
  std::vector<std::string> fired;
  DeadlineTimer t([&](const std::string& id) {
    std::lock_guard l(mu);
    fired.push_back(id);
  });
  auto now = Clock::now();
  t.Set("late", now + 120ms);
  t.Set("early", now + 40ms);
  std::this_thread::sleep_for(250ms);
  std::lock_guard l(mu);
  EXPECT_EQ(fired, (std::vector<std::string>{"early", "late"}));
}

TEST(DeadlineTimerTest, MovingALeaseForwardDelaysExpiry) {
  std::atomic<int> fired{0};
  DeadlineTimer t([&](const std::string&) { ++fired; });
  t.Set("f", Clock::now() + 50ms);
  t.Set("f", Clock::now() + 400ms);  // renewed
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(fired, 0);
  t.Cancel("f");
  std::this_thread::sleep_for(350ms);
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(t.size(), 0u);
}

TEST(DeadlineTimerTest, CallbackMaySetAnotherDeadline) {
  std::atomic<int> fired{0};
  DeadlineTimer* self = nullptr;
  DeadlineTimer t([&](const std::string& id) {
    ++fired;
    if (id == "a") self->Set("b", Clock::now() + 10ms);
  });
  self = &t;
  t.Set("a", Clock::now());
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(fired, 2);
}

}  // namespace
}  // namespace faultline::faults
