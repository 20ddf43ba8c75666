#include "controller/runner/slo.h"

#include <gtest/gtest.h>

namespace faultline::controller {
namespace {

// A sample at `t` from e1, e2, e3 in that order ("?" unreachable, "" no leader).
LeaderSample At(double t, const std::string& e1, const std::string& e2, const std::string& e3) {
  return {t, {{"e1", e1}, {"e2", e2}, {"e3", e3}}};
}

TEST(Slo, PercentileIsNearestRank) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);
  EXPECT_EQ(Percentile(v, 99), 99);
  EXPECT_EQ(Percentile(v, 50), 50);
  EXPECT_EQ(Percentile(v, 100), 100);
  EXPECT_EQ(Percentile(v, 0), 1);
  EXPECT_EQ(Percentile({7}, 99), 7);
  EXPECT_EQ(Percentile({}, 99), 0);
}

TEST(Slo, WorkingLeaderNeedsAQuorumAndTheLeaderItself) {
  EXPECT_EQ(WorkingLeader(At(0, "e1", "e1", "e1")), "e1");
  EXPECT_EQ(WorkingLeader(At(0, "e1", "e1", "?")), "e1") << "a quorum is enough";
  // A paused leader: the followers still name it until their election timeout.
  EXPECT_EQ(WorkingLeader(At(0, "?", "e1", "e1")), "");
  EXPECT_EQ(WorkingLeader(At(0, "e1", "e1", "e2")), "e1");
  EXPECT_EQ(WorkingLeader(At(0, "e1", "", "")), "") << "no quorum";
  EXPECT_EQ(WorkingLeader(At(0, "", "", "")), "");
  // A leader id that is no member of the view (etcd named a member we do not know).
  EXPECT_EQ(WorkingLeader(At(0, "77", "77", "77")), "");
  EXPECT_EQ(WorkingLeader({}), "");
}

TEST(Slo, SpanOfWindowsEndsOpenWindowsNow) {
  EXPECT_EQ(SpanOf({}, 5).first_start, -1);
  EXPECT_EQ(SpanOf({}, 5).last_end, -1);
  std::vector<FaultWindow> w = {{"s", "a", "e1", "f1", "process/pause", 4, 6},
                                {"s", "b", "e2", "f2", "process/pause", 3, -1}};
  EXPECT_EQ(SpanOf(w, 9).first_start, 3);
  EXPECT_EQ(SpanOf(w, 9).last_end, 9);
  w[1].end = 5;
  EXPECT_EQ(SpanOf(w, 9).last_end, 6);
}

TEST(Slo, TimeToLeaderWithoutFaultsPasses) {
  auto c = TimeToLeaderSlo({At(0, "e1", "e1", "e1"), At(1, "?", "", "")}, -1, 5, 1);
  EXPECT_EQ(c.name, "time_to_leader");
  EXPECT_TRUE(c.slo);
  EXPECT_TRUE(c.passed) << c.summary;
  EXPECT_EQ(c.evidence["worst_s"], 0);
}

TEST(Slo, TimeToLeaderRunsFromTheFaultWhenTheLeaderIsReplaced) {
  // The leader e1 is paused at 9.5: followers keep naming it (not a working leader), then elect
  // e2, first seen at 12.
  std::vector<LeaderSample> s = {At(8, "e1", "e1", "e1"), At(9, "e1", "e1", "e1"),
                                 At(10, "?", "e1", "e1"), At(11, "?", "", ""),
                                 At(12, "?", "e2", "e2"), At(13, "?", "e2", "e2")};
  auto c = TimeToLeaderSlo(s, 9.5, 5, 1);
  EXPECT_TRUE(c.passed) << c.summary;
  // Leaderless samples span 10..12 (2 s); from the fault's start it is 2.5 s.
  EXPECT_DOUBLE_EQ(c.evidence["worst_s"].get<double>(), 2.5);
  EXPECT_EQ(c.evidence["leader_before"], "e1");
  EXPECT_EQ(c.evidence["leader_replaced"], true);
  EXPECT_EQ(c.evidence["leaderless_at_end"], false);
  EXPECT_EQ(c.summary, "leader available again within 2.50s (limit 5.00s, sampled every 1.00s)");

  auto tight = TimeToLeaderSlo(s, 9.5, 2, 1);
  EXPECT_FALSE(tight.passed) << "2.5 s is over a 2 s limit";
}

TEST(Slo, TimeToLeaderTakesTheLongestLeaderlessSpan) {
  // A follower fault costs no leader; later two elections without a change of leader.
  std::vector<LeaderSample> s = {At(0, "e1", "e1", "e1"), At(1, "e1", "e1", "?"), At(2, "", "", ""),
                                 At(3, "e1", "e1", "e1"), At(4, "", "", ""),      At(5, "", "", ""),
                                 At(6, "", "", ""),       At(7, "e1", "e1", "e1")};
  auto c = TimeToLeaderSlo(s, 0.5, 10, 1);
  EXPECT_TRUE(c.passed);
  EXPECT_DOUBLE_EQ(c.evidence["worst_s"].get<double>(), 3.0);
  EXPECT_EQ(c.evidence["leader_replaced"], false);
}

TEST(Slo, TimeToLeaderFailsWhenTheRunEndsLeaderless) {
  std::vector<LeaderSample> s = {At(0, "e1", "e1", "e1"), At(2, "?", "e1", "e1"),
                                 At(3, "?", "", "")};
  auto c = TimeToLeaderSlo(s, 1, 100, 1);
  EXPECT_FALSE(c.passed);
  EXPECT_EQ(c.evidence["leaderless_at_end"], true);
  EXPECT_EQ(c.summary, "no leader at the end of the run");
}

TEST(Slo, TimeToLeaderIgnoresSamplesBeforeTheFirstFault) {
  // An election before any fault is not the fault's doing.
  std::vector<LeaderSample> s = {At(0, "", "", ""), At(4, "e2", "e2", "e2"),
                                 At(6, "e2", "e2", "e2")};
  auto c = TimeToLeaderSlo(s, 5, 1, 1);
  EXPECT_TRUE(c.passed) << c.summary;
  EXPECT_EQ(c.evidence["worst_s"], 0);
  EXPECT_EQ(c.evidence["leader_before"], "e2");
}

TEST(Slo, TimeToHealthyFromTheLastFaultsEnd) {
  std::vector<LeaderSample> s = {At(1, "e1", "e1", "e1"), At(5, "?", "e2", "e2"),
                                 At(6, "e2", "e2", "e2"), At(7, "e2", "e2", "e2")};
  auto c = TimeToHealthySlo(s, 4.5, -1, 2);
  EXPECT_EQ(c.name, "time_to_healthy");
  EXPECT_TRUE(c.passed) << c.summary;
  EXPECT_DOUBLE_EQ(c.evidence["seconds"].get<double>(), 1.5);
  EXPECT_FALSE(TimeToHealthySlo(s, 4.5, -1, 1).passed);
}

TEST(Slo, TimeToHealthyFallsBackToThePostRunHealthWait) {
  std::vector<LeaderSample> s = {At(5, "?", "e2", "e2")};
  auto c = TimeToHealthySlo(s, 4, 9, 10);
  EXPECT_TRUE(c.passed);
  EXPECT_DOUBLE_EQ(c.evidence["seconds"].get<double>(), 5.0);
  auto never = TimeToHealthySlo(s, 4, -1, 10);
  EXPECT_FALSE(never.passed);
  EXPECT_EQ(never.summary, "never healthy after the faults");
}

TEST(Slo, P99DuringFaultsCountsRequestsInsideEachWindow) {
  std::vector<FaultWindow> w = {{"s", "a", "e1", "f1", "io/delay", 2, 4},
                                {"s", "b", "e2", "f2", "io/delay", 10, -1}};
  std::vector<std::pair<double, double>> asked;
  auto during = LatenciesDuring(w, [&](double from, double to) {
    asked.emplace_back(from, to);
    return std::vector<double>{from * 10};
  });
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0], std::make_pair(2.0, 4.0));
  EXPECT_EQ(asked[1].first, 10);
  EXPECT_GT(asked[1].second, 1e17) << "an open window has no end";
  EXPECT_EQ(during, (std::vector<double>{20, 100}));

  auto c = P99LatencySlo(during, 150);
  EXPECT_EQ(c.name, "p99_latency");
  EXPECT_TRUE(c.passed) << c.summary;
  EXPECT_EQ(c.evidence["p99_ms"], 100);
  EXPECT_EQ(c.evidence["samples"], 2);
  EXPECT_FALSE(P99LatencySlo(during, 99.9).passed);
  auto none = P99LatencySlo({}, 150);
  EXPECT_FALSE(none.passed);
  EXPECT_EQ(none.summary, "no successful request while a fault was active");
}

}  // namespace
}  // namespace faultline::controller
