#include "faults/io/rules.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

namespace faultline::faults::io {
namespace {

std::shared_ptr<Rule> MakeRule(RuleSpec spec, uint64_t id = 1) {
  return std::make_shared<Rule>(id, std::move(spec));
}

RuleSet SetOf(std::vector<std::shared_ptr<Rule>> rules) {
  RuleSet s;
  for (auto& r : rules) s.methods |= r->spec().methods;
  s.rules = std::move(rules);
  return s;
}

TEST(RulesTest, MethodNames) {
  EXPECT_EQ(*ParseMethod("fdatasync"), Bit(Method::kFdatasync));
  EXPECT_EQ(*ParseMethod("fsync"), Bit(Method::kFsync) | Bit(Method::kFdatasync));
  EXPECT_EQ(*ParseMethod("write"), Bit(Method::kWrite));
  EXPECT_FALSE(ParseMethod("frobnicate"));
  EXPECT_EQ(MethodName(Method::kRead), "read");
  EXPECT_EQ(*ParseErrno("EIO"), EIO);
  EXPECT_FALSE(ParseErrno("EFOO"));
}

TEST(RulesTest, MatchesByMethodAndPath) {
  RuleSpec s;
  s.kind = RuleKind::kErrno;
  s.errnos = {{EIO, 1}};
  s.path_glob = "*.wal";
  s.methods = Bit(Method::kWrite);
  auto set = SetOf({MakeRule(s)});
  EXPECT_EQ(Decide(set, Method::kWrite, "member/wal/0.wal").err, EIO);
  EXPECT_EQ(Decide(set, Method::kRead, "member/wal/0.wal").err, 0);
  EXPECT_EQ(Decide(set, Method::kWrite, "member/snap/db").err, 0);
  EXPECT_EQ(set.rules[0]->matched(), 1);
  EXPECT_EQ(set.rules[0]->acted(), 1);
}

TEST(RulesTest, EmptyMethodListMeansApplicableMethods) {
  RuleSpec s;
  s.kind = RuleKind::kShort;
  s.short_fraction = 0.5;
  auto r = MakeRule(s);
  EXPECT_TRUE(r->Matches(Method::kRead, "x"));
  EXPECT_TRUE(r->Matches(Method::kWrite, "x"));
  EXPECT_FALSE(r->Matches(Method::kFsync, "x"));
}

TEST(RulesTest, SeededPercentIsReproducibleAndNearTarget) {
  RuleSpec s;
  s.kind = RuleKind::kErrno;
  s.errnos = {{EIO, 1}};
  s.percent = 50;
  s.seed = 42;
  auto run = [&](uint64_t seed) {
    RuleSpec t = s;
    t.seed = seed;
    auto set = SetOf({MakeRule(t)});
    std::vector<bool> out;
    for (int i = 0; i < 1000; ++i) out.push_back(Decide(set, Method::kWrite, "f").err != 0);
    return out;
  };
  auto a = run(42), b = run(42), c = run(43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  int hits = static_cast<int>(std::count(a.begin(), a.end(), true));
  EXPECT_GT(hits, 430);
  EXPECT_LT(hits, 570);
}

TEST(RulesTest, MaxCountBoundsActs) {
  RuleSpec s;
  s.kind = RuleKind::kErrno;
  s.errnos = {{EIO, 1}};
  s.max_count = 3;
  auto set = SetOf({MakeRule(s)});
  int fails = 0;
  for (int i = 0; i < 10; ++i) fails += Decide(set, Method::kWrite, "f").err != 0;
  EXPECT_EQ(fails, 3);
  EXPECT_EQ(set.rules[0]->matched(), 10);
  EXPECT_EQ(set.rules[0]->acted(), 3);
}

TEST(RulesTest, WeightedErrnos) {
  RuleSpec s;
  s.kind = RuleKind::kErrno;
  s.errnos = {{EIO, 3}, {EROFS, 1}};
  auto set = SetOf({MakeRule(s)});
  std::map<int, int> seen;
  for (int i = 0; i < 4000; ++i) ++seen[Decide(set, Method::kWrite, "f").err];
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_NEAR(seen[EIO] / 4000.0, 0.75, 0.04);
}

TEST(RulesTest, DelayDistributions) {
  RuleSpec s;
  s.kind = RuleKind::kLatency;
  s.delay = std::chrono::milliseconds(10);
  EXPECT_EQ(MakeRule(s)->PickDelay(7), std::chrono::milliseconds(10));
  s.distribution = Distribution::kUniform;
  s.jitter = std::chrono::milliseconds(5);
  auto u = MakeRule(s);
  for (uint64_t n = 0; n < 200; ++n) {
    auto d = u->PickDelay(n);
    EXPECT_GE(d, std::chrono::milliseconds(5));
    EXPECT_LE(d, std::chrono::milliseconds(15));
  }
  s.distribution = Distribution::kNormal;
  s.jitter = std::chrono::milliseconds(20);
  auto nrm = MakeRule(s);
  double sum = 0;
  for (uint64_t n = 0; n < 2000; ++n) {
    auto d = nrm->PickDelay(n);
    EXPECT_GE(d.count(), 0);  // clamped
    sum += static_cast<double>(d.count());
  }
  EXPECT_GT(sum / 2000, 10e6);  // clamping at 0 pulls the mean up, never down
}

TEST(RulesTest, OrderErrnoBeforeShapingLatencyAdds) {
  RuleSpec shortr;
  shortr.kind = RuleKind::kShort;
  shortr.short_fraction = 0.5;
  RuleSpec err;
  err.kind = RuleKind::kErrno;
  err.errnos = {{EIO, 1}};
  RuleSpec lat;
  lat.kind = RuleKind::kLatency;
  lat.delay = std::chrono::milliseconds(3);
  auto set = SetOf({MakeRule(shortr, 1), MakeRule(lat, 2), MakeRule(err, 3), MakeRule(lat, 4)});
  Decision d = Decide(set, Method::kWrite, "f");
  EXPECT_EQ(d.err, EIO);
  EXPECT_TRUE(d.shaping.empty());  // the short rule armed first does not act on a failed op
  EXPECT_EQ(set.rules[0]->acted(), 0);
  EXPECT_EQ(d.delay, std::chrono::milliseconds(6));
}

TEST(RulesTest, CorruptChangesAtMostMaxBytes) {
  for (auto mode : {CorruptMode::kFlip, CorruptMode::kZero, CorruptMode::kRandom}) {
    RuleSpec s;
    s.kind = RuleKind::kCorrupt;
    s.corrupt_mode = mode;
    s.corrupt_max_bytes = 4;
    auto r = MakeRule(s);
    std::string buf(100, 'x'), orig = buf;
    EXPECT_EQ(r->Corrupt(1, buf.data(), buf.size()), 4u);
    int changed = 0;
    for (size_t i = 0; i < buf.size(); ++i) changed += buf[i] != orig[i];
    EXPECT_EQ(changed, 4);
  }
}

TEST(RulesTest, ShortLengthAndSpaceBudget) {
  RuleSpec s;
  s.kind = RuleKind::kShort;
  s.short_bytes = 100;
  EXPECT_EQ(MakeRule(s)->ShortLength(4096), 100u);
  EXPECT_EQ(MakeRule(s)->ShortLength(50), 49u);  // always short
  s.short_bytes = 0;
  s.short_fraction = 0.25;
  EXPECT_EQ(MakeRule(s)->ShortLength(4096), 1024u);

  RuleSpec e;
  e.kind = RuleKind::kEnospcAfter;
  e.enospc_after_bytes = 10000;
  auto r = MakeRule(e);
  EXPECT_EQ(r->TakeSpace(4096), 4096u);
  EXPECT_EQ(r->TakeSpace(4096), 4096u);
  EXPECT_EQ(r->TakeSpace(4096), 1808u);
  EXPECT_EQ(r->TakeSpace(4096), 0u);
}

TEST(RulesTest, CrashRulesTriggerOnceAtTheNthFiring) {
  RuleSpec s;
  s.kind = RuleKind::kCrashAt;
  s.methods = Bit(Method::kFdatasync);
  s.path_glob = "*.wal";
  s.crash_at_op = 3;
  RuleSet set;
  set.rules.push_back(std::make_shared<Rule>(1, s));
  set.methods = set.rules[0]->spec().methods;
  std::vector<int> crashed;
  for (int i = 1; i <= 6; ++i) {
    EXPECT_EQ(Decide(set, Method::kFdatasync, "x.db").crash, nullptr);
    if (Decide(set, Method::kFdatasync, "member/wal/0.wal").crash) crashed.push_back(i);
  }
  EXPECT_EQ(crashed, std::vector<int>{3});
}

TEST(RulesTest, LoseUnsyncedTracksWithoutDrawingAndSkipSyncSkips) {
  RuleSpec lose;
  lose.kind = RuleKind::kLoseUnsynced;
  lose.path_glob = "*.wal";
  RuleSpec skip;
  skip.kind = RuleKind::kSkipSync;
  RuleSet set;
  set.rules.push_back(std::make_shared<Rule>(1, lose));
  set.rules.push_back(std::make_shared<Rule>(2, skip));
  for (auto& r : set.rules) set.methods |= r->spec().methods;
  auto d = Decide(set, Method::kWrite, "a.wal");
  EXPECT_TRUE(d.track);
  EXPECT_FALSE(d.record);
  EXPECT_FALSE(Decide(set, Method::kWrite, "a.db").track);
  EXPECT_EQ(set.rules[0]->matched(), 0) << "tracking is not a draw";
  EXPECT_EQ(Decide(set, Method::kFdatasync, "a.db").skip_sync, set.rules[1].get());
  EXPECT_EQ(Decide(set, Method::kWrite, "a.db").skip_sync, nullptr);
}

TEST(RulesTest, TornChoiceIsSeededAndNeverAllOrNothing) {
  RuleSpec s;
  s.kind = RuleKind::kTornWrite;
  for (uint64_t seed = 1; seed < 50; ++seed) {
    s.seed = seed;
    Rule a(1, s), b(2, s);
    auto ka = a.ChooseKept(5);
    EXPECT_EQ(ka, b.ChooseKept(5));
    size_t n = std::count(ka.begin(), ka.end(), true);
    EXPECT_GT(n, 0u);
    EXPECT_LT(n, 5u);
  }
  s.keep = {0, 3};
  Rule c(3, s);
  EXPECT_EQ(c.ChooseKept(4), (std::vector<bool>{true, false, false, true}));
}

}  // namespace
}  // namespace faultline::faults::io
