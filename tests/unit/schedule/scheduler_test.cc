#include "controller/schedule/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "time_util.h"

namespace faultline::controller {
namespace {

using namespace std::chrono_literals;
using testing::Str;
using testing::T;
using Kind = Decision::Kind;

Scheduler Make(const char* cron, SchedulePolicy p = {}) {
  std::string why;
  auto c = CronSchedule::Parse(cron, &why);
  EXPECT_TRUE(c) << why;
  return Scheduler("exp", *c, p);
}

ScheduleState Fresh(const char* created) {
  ScheduleState s;
  s.created = T(created);
  return s;
}

TEST(Scheduler, StartsEachDueRunOnce) {
  auto sch = Make("@every 20s");
  auto st = Fresh("2026-01-01 00:00:00");
  EXPECT_TRUE(sch.Due(T("2026-01-01 00:00:19"), st).empty());
  EXPECT_EQ(Str(*sch.NextWake(st)), "2026-01-01 00:00:20");
  auto d = sch.Due(T("2026-01-01 00:00:20"), st);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, Kind::kStart);
  EXPECT_EQ(Str(d[0].run.scheduled), "2026-01-01 00:00:20");
  EXPECT_EQ(d[0].run.id,
            "exp-" + std::to_string(T("2026-01-01 00:00:20").time_since_epoch().count()));
  EXPECT_TRUE(sch.Due(T("2026-01-01 00:00:21"), st).empty()) << "a due time is handled once";
  sch.Finished(d[0].run.id, T("2026-01-01 00:00:30"), true, st);
  EXPECT_TRUE(st.active.empty());
  ASSERT_EQ(st.history.size(), 1u);
  EXPECT_EQ(st.history[0].outcome, Outcome::kSucceeded);
  d = sch.Due(T("2026-01-01 00:00:40"), st);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, Kind::kStart);
}

TEST(Scheduler, ForbidSkipsWhileARunIsActiveAllowOverlaps) {
  auto forbid = Make("@every 20s");
  auto st = Fresh("2026-01-01 00:00:00");
  auto first = forbid.Due(T("2026-01-01 00:00:20"), st);
  ASSERT_EQ(first[0].kind, Kind::kStart);
  auto second = forbid.Due(T("2026-01-01 00:00:40"), st);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].kind, Kind::kSkipForbid);
  EXPECT_EQ(st.skipped_total, 1u);
  EXPECT_EQ(st.active.size(), 1u);
  EXPECT_EQ(st.history.back().outcome, Outcome::kSkippedForbid);
  forbid.Finished(first[0].run.id, T("2026-01-01 00:00:50"), false, st);
  auto third = forbid.Due(T("2026-01-01 00:01:00"), st);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].kind, Kind::kStart) << "the run after the overlap starts again";

  SchedulePolicy allow;
  allow.concurrency = SchedulePolicy::Concurrency::kAllow;
  auto allowing = Make("@every 20s", allow);
  auto st2 = Fresh("2026-01-01 00:00:00");
  allowing.Due(T("2026-01-01 00:00:20"), st2);
  auto d = allowing.Due(T("2026-01-01 00:00:40"), st2);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, Kind::kStart);
  EXPECT_EQ(st2.active.size(), 2u);
}

TEST(Scheduler, OneCatchUpRunAfterDowntimeWithinTheDeadline) {
  SchedulePolicy p;
  p.starting_deadline = 120s;
  auto sch = Make("*/10 * * * *", p);
  auto st = Fresh("2026-01-01 00:00:00");
  // The controller was down from 00:05 to 00:41: due at 00:10, 00:20, 00:30, 00:40.
  auto d = sch.Due(T("2026-01-01 00:41:00"), st);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].kind, Kind::kMissed);
  EXPECT_EQ(d[0].run.count, 3u);
  EXPECT_EQ(Str(d[0].run.scheduled), "2026-01-01 00:10:00");
  EXPECT_EQ(d[1].kind, Kind::kStart);
  EXPECT_EQ(Str(d[1].run.scheduled), "2026-01-01 00:40:00");
  EXPECT_EQ(st.missed_total, 3u);
  EXPECT_EQ(Str(*st.last_scheduled), "2026-01-01 00:40:00");
  EXPECT_EQ(Str(*sch.NextWake(st)), "2026-01-01 00:50:00");
}

TEST(Scheduler, ARunOlderThanTheDeadlineIsMissedNotStarted) {
  SchedulePolicy p;
  p.starting_deadline = 60s;
  auto sch = Make("*/10 * * * *", p);
  auto st = Fresh("2026-01-01 00:00:00");
  auto d = sch.Due(T("2026-01-01 00:11:01"), st);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, Kind::kMissed);
  EXPECT_EQ(st.missed_total, 1u);
  EXPECT_TRUE(st.active.empty());
  // Exactly at the deadline still starts.
  d = sch.Due(T("2026-01-01 00:21:00"), st);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, Kind::kStart);
}

TEST(Scheduler, WithoutADeadlineTheLatestMissedRunStillStarts) {
  auto sch = Make("@hourly");
  auto st = Fresh("2026-01-01 00:00:00");
  auto d = sch.Due(T("2026-01-03 05:30:00"), st);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].kind, Kind::kMissed);
  EXPECT_EQ(d[0].run.count, 52u);
  EXPECT_EQ(d[1].kind, Kind::kStart);
  EXPECT_EQ(Str(d[1].run.scheduled), "2026-01-03 05:00:00");
}

TEST(Scheduler, LongOutageOfAFastScheduleIsCountedWithoutWalkingEveryTick) {
  auto sch = Make("@every 1s");
  auto st = Fresh("2026-01-01 00:00:00");
  auto d = sch.Due(T("2026-01-02 00:00:00"), st);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].run.count, 86399u);
  EXPECT_EQ(Str(d[1].run.scheduled), "2026-01-02 00:00:00");
}

TEST(Scheduler, SuspendAndResume) {
  auto sch = Make("@every 20s");
  auto st = Fresh("2026-01-01 00:00:00");
  sch.Suspend(st);
  EXPECT_TRUE(sch.Due(T("2026-01-01 00:05:00"), st).empty());
  EXPECT_FALSE(sch.NextWake(st).has_value());
  sch.Resume(T("2026-01-01 00:05:00"), st);
  EXPECT_EQ(st.missed_total, 0u) << "paused time is not a miss";
  EXPECT_TRUE(sch.Due(T("2026-01-01 00:05:10"), st).empty()) << "no catch-up for paused time";
  auto d = sch.Due(T("2026-01-01 00:05:20"), st);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, Kind::kStart);
  EXPECT_EQ(Str(d[0].run.scheduled), "2026-01-01 00:05:20");
}

TEST(Scheduler, HistoryKeepsTheLimit) {
  SchedulePolicy p;
  p.history_limit = 3;
  auto sch = Make("@every 10s", p);
  auto st = Fresh("2026-01-01 00:00:00");
  for (int i = 1; i <= 6; ++i) {
    auto now = T("2026-01-01 00:00:00") + std::chrono::seconds(10 * i);
    auto d = sch.Due(now, st);
    ASSERT_EQ(d.size(), 1u);
    sch.Finished(d[0].run.id, now + 5s, i % 2 == 0, st);
  }
  ASSERT_EQ(st.history.size(), 3u);
  EXPECT_EQ(Str(st.history.front().scheduled), "2026-01-01 00:00:40");
  EXPECT_EQ(Str(st.history.back().scheduled), "2026-01-01 00:01:00");
  EXPECT_EQ(st.history.back().outcome, Outcome::kSucceeded);
  EXPECT_EQ(st.history[1].outcome, Outcome::kFailed);
}

TEST(Scheduler, StateSurvivesARestartThroughJson) {
  auto sch = Make("@every 20s");
  auto st = Fresh("2026-01-01 00:00:00");
  auto d = sch.Due(T("2026-01-01 00:00:20"), st);
  sch.Due(T("2026-01-01 00:00:40"), st);  // skipped: the first run is still active
  sch.Suspend(st);
  std::string saved = st.ToJson().dump();

  auto back = ScheduleState::FromJson(nlohmann::json::parse(saved));
  EXPECT_EQ(back.ToJson(), st.ToJson());
  EXPECT_TRUE(back.suspended);
  ASSERT_EQ(back.active.size(), 1u);
  EXPECT_EQ(back.active[0].id, d[0].run.id);
  EXPECT_EQ(back.skipped_total, 1u);
  // The restarted controller resumes and finishes the run it recovered.
  sch.Resume(T("2026-01-01 00:01:00"), back);
  sch.Finished(d[0].run.id, T("2026-01-01 00:01:00"), true, back);
  EXPECT_TRUE(back.active.empty());
  EXPECT_EQ(sch.Due(T("2026-01-01 00:01:20"), back)[0].kind, Kind::kStart);
}

TEST(Scheduler, MalformedStateNamesTheField) {
  auto st = Fresh("2026-01-01 00:00:00").ToJson();
  st["history"] = nlohmann::json::array({{{"id", "x"}}});
  try {
    ScheduleState::FromJson(st);
    FAIL() << "accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("history[0].scheduled: missing"));
  }
  st.erase("created");
  EXPECT_THROW(ScheduleState::FromJson(st), std::runtime_error);
}

TEST(Scheduler, PolicyFromTheExperimentProto) {
  v1::Schedule s;
  s.set_concurrency_policy(v1::Schedule::ALLOW);
  s.set_starting_deadline_seconds(30);
  auto p = SchedulePolicy::FromProto(s);
  EXPECT_EQ(p.concurrency, SchedulePolicy::Concurrency::kAllow);
  EXPECT_EQ(p.starting_deadline, 30s);
  EXPECT_EQ(p.history_limit, 10u);
  EXPECT_EQ(SchedulePolicy::FromProto(v1::Schedule()).concurrency,
            SchedulePolicy::Concurrency::kForbid);
}

}  // namespace
}  // namespace faultline::controller
