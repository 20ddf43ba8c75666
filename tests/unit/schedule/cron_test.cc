#include "controller/schedule/cron.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "time_util.h"

namespace faultline::controller {
namespace {

using testing::Str;
using testing::T;

struct Case {
  const char* expr;
  const char* after;
  const char* next;
};

// Expected times worked out by hand from the calendar (2026-01-01 is a Thursday, 2026 is not a
// leap year, 2028 is).
const Case kCases[] = {
    {"* * * * *", "2026-01-01 00:00:00", "2026-01-01 00:01:00"},
    {"* * * * *", "2026-01-01 00:00:30", "2026-01-01 00:01:00"},
    {"*/15 * * * *", "2026-01-01 00:16:00", "2026-01-01 00:30:00"},
    {"5 4 * * *", "2026-01-01 04:05:00", "2026-01-02 04:05:00"},
    {"0 9-17/4 * * *", "2026-01-01 09:00:00", "2026-01-01 13:00:00"},
    {"0 9-17/4 * * *", "2026-01-01 17:00:00", "2026-01-02 09:00:00"},
    {"30 2 1,15 * *", "2026-01-02 00:00:00", "2026-01-15 02:30:00"},
    {"0 0 * * MON", "2026-01-01 00:00:00", "2026-01-05 00:00:00"},
    {"0 0 * * mon-fri", "2026-01-02 12:00:00", "2026-01-05 00:00:00"},
    {"0 0 * * 7", "2026-01-01 00:00:00", "2026-01-04 00:00:00"},  // 7 = Sunday
    {"0 0 * * 0", "2026-01-01 00:00:00", "2026-01-04 00:00:00"},
    {"0 12 * JAN,JUL *", "2026-01-31 13:00:00", "2026-07-01 12:00:00"},
    {"0 0 1 */3 *", "2026-01-01 00:00:00", "2026-04-01 00:00:00"},
    {"0 0 31 * *", "2026-01-31 00:00:00", "2026-03-31 00:00:00"},    // skips February
    {"0 0 29 2 *", "2026-01-01 00:00:00", "2028-02-29 00:00:00"},    // next leap day
    {"0 0 13 * FRI", "2026-01-01 00:00:00", "2026-01-02 00:00:00"},  // dom OR dow when both set
    {"0 0 ? * SUN", "2026-01-01 00:00:00", "2026-01-04 00:00:00"},
    {"59 23 31 12 *", "2026-01-01 00:00:00", "2026-12-31 23:59:00"},
    {"0 0 1 1 *", "2026-12-31 23:59:59", "2027-01-01 00:00:00"},
    // Six fields: seconds first.
    {"*/10 * * * * *", "2026-01-01 00:00:05", "2026-01-01 00:00:10"},
    {"30 0 0 * * *", "2026-01-01 00:00:30", "2026-01-02 00:00:30"},
    {"0,20,40 * * * * *", "2026-01-01 00:00:40", "2026-01-01 00:01:00"},
    {"15/20 * * * * *", "2026-01-01 00:00:36", "2026-01-01 00:00:55"},
    // Descriptors.
    {"@hourly", "2026-01-01 00:00:00", "2026-01-01 01:00:00"},
    {"@daily", "2026-01-01 00:00:01", "2026-01-02 00:00:00"},
    {"@midnight", "2026-01-01 23:59:59", "2026-01-02 00:00:00"},
    {"@weekly", "2026-01-01 00:00:00", "2026-01-04 00:00:00"},
    {"@monthly", "2026-01-15 00:00:00", "2026-02-01 00:00:00"},
    {"@yearly", "2026-01-01 00:00:00", "2027-01-01 00:00:00"},
    {"@annually", "2026-06-01 00:00:00", "2027-01-01 00:00:00"},
    {"@every 10m", "2026-01-01 00:03:07", "2026-01-01 00:13:07"},
    {"@every 1h30m", "2026-01-01 23:00:00", "2026-01-02 00:30:00"},
    {"@every 20s", "2026-01-01 00:00:00", "2026-01-01 00:00:20"},
    {"CRON_TZ=UTC 0 6 * * *", "2026-01-01 07:00:00", "2026-01-02 06:00:00"},
    {"TZ=Etc/UTC @hourly", "2026-01-01 00:30:00", "2026-01-01 01:00:00"},
};

TEST(Cron, KnownNextTimes) {
  for (const auto& c : kCases) {
    std::string why;
    auto cron = CronSchedule::Parse(c.expr, &why);
    ASSERT_TRUE(cron.has_value()) << c.expr << ": " << why;
    auto next = cron->Next(T(c.after));
    ASSERT_TRUE(next.has_value()) << c.expr;
    EXPECT_EQ(Str(*next), c.next) << c.expr << " after " << c.after;
  }
}

TEST(Cron, StarStepInDayOfMonthMeansAnd) {
  // robfig/cron (chaos-mesh) treats a day field starting with '*' as unrestricted, so the other
  // field alone decides: every Friday that is also an odd day of the month.
  auto cron = CronSchedule::Parse("0 0 */2 * FRI");
  ASSERT_TRUE(cron);
  EXPECT_EQ(Str(*cron->Next(T("2026-01-02 00:00:00"))), "2026-01-09 00:00:00");
  EXPECT_EQ(Str(*cron->Next(T("2026-01-09 00:00:00"))), "2026-01-23 00:00:00");
}

TEST(Cron, SuccessiveTimesAreIncreasing) {
  auto cron = CronSchedule::Parse("0 */7 * * 1-5");
  ASSERT_TRUE(cron);
  Seconds t = T("2026-01-01 00:00:00");
  for (int i = 0; i < 200; ++i) {
    auto n = cron->Next(t);
    ASSERT_TRUE(n);
    EXPECT_GT(*n, t);
    t = *n;
  }
}

TEST(Cron, BadExpressionsSayWhy) {
  const std::pair<const char*, const char*> bad[] = {
      {"", "empty"},
      {"* * * *", "expected 5 fields"},
      {"* * * * * * *", "expected 5 fields"},
      {"60 * * * *", "out of range 0..59"},
      {"* 24 * * *", "out of range 0..23"},
      {"* * 0 * *", "out of range 1..31"},
      {"* * * 13 *", "out of range 1..12"},
      {"* * * * 8", "out of range 0..7"},
      {"* * * FOO *", "bad month 'FOO'"},
      {"* * * * Funday", "bad day of week"},
      {"*/0 * * * *", "bad step"},
      {"5-1 * * * *", "runs backwards"},
      {"? * * * *", "only for day"},
      {"0 0 30 2 *", "never fires"},
      {"@fortnightly", "unknown descriptor"},
      {"@every", "bad @every duration"},
      {"@every 500ms", "at least 1s"},
      {"@every ten", "bad @every duration"},
      {"CRON_TZ=Europe/Berlin 0 0 * * *", "not supported"},
      {"1,,2 * * * *", "bad minute"},
  };
  for (const auto& [expr, want] : bad) {
    std::string why;
    EXPECT_FALSE(CronSchedule::Parse(expr, &why).has_value()) << expr;
    EXPECT_THAT(why, ::testing::HasSubstr(want)) << expr;
  }
}

}  // namespace
}  // namespace faultline::controller
