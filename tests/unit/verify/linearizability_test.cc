// Hand-built histories with a known verdict for the linearizability checker and the
// lost-write check.
#include "controller/verify/linearizability.h"

#include <gtest/gtest.h>

#include "bench/verify/history_gen.h"
#include "controller/verify/history_checks.h"
#include "tests/unit/verify/history_builder.h"

namespace faultline::verify {
namespace {

using testing::HistoryBuilder;
using V = LinearizabilityResult::Verdict;

TEST(Linearizability, SequentialHistoryOfEveryOpKindIsLinearizable) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Get(1, "k", 2, 3, "a", 2, 2);
  b.Cas(0, "k", "a", "b", 4, 5, true, 3);
  b.Cas(1, "k", "a", "c", 6, 7, false, 3);
  b.Get(1, "k", 8, 9, "b", 3, 3);
  b.Del(0, "k", 10, 11, 1, 4);
  b.Get(1, "k", 12, 13, std::nullopt);
  b.Del(0, "k", 14, 15, 0, 4);
  b.Cas(1, "k", std::nullopt, "d", 16, 17, true, 5);
  LinearizabilityResult r = CheckLinearizability(b.history());
  EXPECT_EQ(r.verdict, V::kLinearizable) << r.Summary();
  EXPECT_EQ(r.ops_checked, 9u);
  EXPECT_TRUE(CheckLostWrites(b.history()).passed);
}

TEST(Linearizability, ReadConcurrentWithWriteMaySeeEitherValue) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Put(0, "k", "b", 10, 20, 3);
  b.Get(1, "k", 11, 12, "b", 3);  // the write took effect early
  b.Get(2, "k", 13, 14, "b", 3);
  b.Get(3, "k", 10, 19, "a", 2);  // overlaps too: may have read before it
  EXPECT_TRUE(CheckLinearizability(b.history()).ok());
}

TEST(Linearizability, StaleReadIsNotLinearizable) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Put(0, "k", "b", 2, 3, 3);
  Op& stale = b.Get(1, "k", 4, 5, "a", 2);
  int64_t stale_id = stale.id;
  LinearizabilityResult r = CheckLinearizability(b.history());
  ASSERT_EQ(r.verdict, V::kNotLinearizable);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].key, "k");
  EXPECT_EQ(r.failures[0].failing_op, stale_id);
  EXPECT_NE(RenderFailure(r.failures[0]).find("> op " + std::to_string(stale_id)),
            std::string::npos);
}

TEST(Linearizability, LostAcknowledgedWriteIsCaughtByBothCheckers) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Put(0, "k", "b", 2, 3, 3);  // acknowledged, then never seen
  b.Get(1, "k", 4, 5, "a", 2);
  EXPECT_FALSE(CheckLinearizability(b.history()).ok());
  CheckResult lost = CheckLostWrites(b.history());
  EXPECT_FALSE(lost.passed);
  EXPECT_EQ(lost.evidence["lost"], 1);
  EXPECT_EQ(lost.evidence["lost_examples"][0]["value"], "b");
}

TEST(Linearizability, LostWriteSeenOnlyByTheFinalRead) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.history().final_reads.push_back({"k", false, "", 0});
  CheckResult lost = CheckLostWrites(b.history());
  EXPECT_FALSE(lost.passed);
  EXPECT_EQ(lost.evidence["lost_examples"][0]["read"], "final read");
  // With a delete that may have come after it, absent is fine.
  b.Del(1, "k", 2, 30, 0, 0, Outcome::kUnknown);
  EXPECT_TRUE(CheckLostWrites(b.history()).passed);
}

TEST(Linearizability, DuplicateApplyIsNotLinearizable) {
  // "a" is written once (revision 2) but a later read finds it again, re-applied at revision 4
  // after "b" had replaced it.
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Put(0, "k", "b", 2, 3, 3);
  b.Get(1, "k", 4, 5, "b", 3);
  b.Get(1, "k", 6, 7, "a", 4);
  EXPECT_FALSE(CheckLinearizability(b.history()).ok());
  CheckResult lost = CheckLostWrites(b.history());
  EXPECT_FALSE(lost.passed);
  EXPECT_EQ(lost.evidence["revision_mismatch"], 1);
}

TEST(Linearizability, DuplicateApplySameValueWrongRevision) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Get(1, "k", 2, 3, "a", 5);  // acknowledged at revision 2, read at 5
  EXPECT_FALSE(CheckLinearizability(b.history()).ok());
}

TEST(Linearizability, UnknownWriteMayHaveHappened) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Put(0, "k", "x", 2, 3, 0, Outcome::kUnknown);
  b.Get(1, "k", 10, 11, "x", 3);
  b.Get(2, "k", 12, 13, "x", 3);
  EXPECT_TRUE(CheckLinearizability(b.history()).ok());
}

TEST(Linearizability, UnknownWriteMayNotHaveHappened) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Put(0, "k", "x", 2, 3, 0, Outcome::kUnknown);
  b.Get(1, "k", 10, 11, "a", 2);
  b.Get(2, "k", 12, 13, "a", 2);
  EXPECT_TRUE(CheckLinearizability(b.history()).ok());
}

TEST(Linearizability, UnknownWriteCannotHappenTwiceOrUnhappen) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Put(0, "k", "x", 2, 3, 0, Outcome::kUnknown);
  b.Get(1, "k", 10, 11, "x", 3);
  b.Get(2, "k", 12, 13, "a", 2);  // back to "a": "x" was visible, then vanished
  EXPECT_FALSE(CheckLinearizability(b.history()).ok());
}

TEST(Linearizability, UnknownWriteMayTakeEffectLongAfterItsTimeout) {
  HistoryBuilder b;
  b.Put(0, "k", "x", 0, 1, 0, Outcome::kUnknown);
  b.Get(1, "k", 10, 11, std::nullopt);
  b.Get(1, "k", 20, 21, "x", 7);
  EXPECT_TRUE(CheckLinearizability(b.history()).ok());
}

TEST(Linearizability, FailedWriteDidNotHappen) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Put(0, "k", "x", 2, 3, 0, Outcome::kFailed);
  b.Get(1, "k", 10, 11, "x", 3);
  EXPECT_FALSE(CheckLinearizability(b.history()).ok());
}

TEST(Linearizability, CasMustSucceedExactlyWhenItsCompareHolds) {
  HistoryBuilder ok;
  ok.Cas(0, "k", std::nullopt, "a", 0, 1, true, 2);
  ok.Cas(1, "k", std::nullopt, "b", 2, 3, false, 2);
  ok.Cas(2, "k", "a", "c", 4, 5, true, 3);
  ok.Get(0, "k", 6, 7, "c", 3);
  EXPECT_TRUE(CheckLinearizability(ok.history()).ok());

  HistoryBuilder bad;  // the compare held but the txn says it failed
  bad.Put(0, "k", "a", 0, 1, 2);
  bad.Cas(1, "k", "a", "b", 2, 3, false, 2);
  EXPECT_FALSE(CheckLinearizability(bad.history()).ok());

  HistoryBuilder bad2;  // two concurrent cas from the same value cannot both win
  bad2.Put(0, "k", "a", 0, 1, 2);
  bad2.Cas(1, "k", "a", "b", 2, 10, true, 3);
  bad2.Cas(2, "k", "a", "c", 2, 10, true, 4);
  EXPECT_FALSE(CheckLinearizability(bad2.history()).ok());
}

TEST(Linearizability, UnknownCasOutcomeBothWays) {
  HistoryBuilder happened;
  happened.Put(0, "k", "a", 0, 1, 2);
  happened.Cas(1, "k", "a", "b", 2, 3, false, 0, Outcome::kUnknown);
  happened.Get(2, "k", 5, 6, "b", 3);
  EXPECT_TRUE(CheckLinearizability(happened.history()).ok());
  HistoryBuilder not_happened;
  not_happened.Put(0, "k", "a", 0, 1, 2);
  not_happened.Cas(1, "k", "a", "b", 2, 3, false, 0, Outcome::kUnknown);
  not_happened.Get(2, "k", 5, 6, "a", 2);
  EXPECT_TRUE(CheckLinearizability(not_happened.history()).ok());
}

TEST(Linearizability, DeleteCountMustMatchPresence) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Del(1, "k", 2, 3, 0, 2);  // the key existed: etcd would report one deletion
  EXPECT_FALSE(CheckLinearizability(b.history()).ok());
}

TEST(Linearizability, SerializableReadsAreNotJudged) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Put(0, "k", "b", 2, 3, 3);
  b.Get(1, "k", 4, 5, "a", 2).serializable = true;
  LinearizabilityResult r = CheckLinearizability(b.history());
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.ops_skipped, 1u);
}

TEST(Linearizability, FailureIsLocalisedToItsKeyAndShrunk) {
  HistoryBuilder b;
  int64_t t = 0, rev = 1;
  for (int i = 0; i < 200; ++i) {
    for (const char* key : {"a", "b"}) {
      std::string v = std::string(key) + std::to_string(i);
      b.Put(i % 4, key, v, t, t + 3, ++rev);
      b.Get((i + 1) % 4, key, t + 1, t + 4, v, rev);
      t += 5;
    }
  }
  // Near the end, "b" reads a value from long ago.
  int64_t bad = b.Get(3, "b", t + 10, t + 11, "b3", 9).id;
  for (int i = 0; i < 20; ++i) b.Get(2, "a", t + 20 + i * 2, t + 21 + i * 2, "a199", 400);
  LinearizabilityResult r = CheckLinearizability(b.history());
  ASSERT_EQ(r.verdict, V::kNotLinearizable);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].key, "b");
  EXPECT_EQ(r.failures[0].failing_op, bad);
  EXPECT_EQ(r.failures[0].key_ops, 401u);
  EXPECT_LE(r.failures[0].window.size(), 10u);
  EXPECT_EQ(r.keys, 2u);
}

TEST(Linearizability, ManyConcurrentWritersAreOrderedByTheirRevisions) {
  // Eight overlapping puts, then reads that pin the order the revisions imply.
  HistoryBuilder b;
  for (int i = 0; i < 8; ++i) b.Put(i, "k", "v" + std::to_string(i), 0, 100, 10 + (7 - i));
  b.Get(0, "k", 101, 102, "v0", 17);
  EXPECT_TRUE(CheckLinearizability(b.history()).ok());
  // A read during the writes that saw the last-applied value, then one that saw an earlier one.
  HistoryBuilder bad;
  for (int i = 0; i < 8; ++i) bad.Put(i, "k", "v" + std::to_string(i), 0, 100, 10 + i);
  bad.Get(8, "k", 50, 60, "v7", 17);
  bad.Get(9, "k", 61, 70, "v3", 13);
  LinearizabilityResult r = CheckLinearizability(bad.history());
  EXPECT_FALSE(r.ok());
}

TEST(Linearizability, SearchBudgetGivesInconclusiveNotAFalseVerdict) {
  // 100 steps cannot get through 150 ops, linearizable or not: the verdict says so.
  HistoryBuilder b;
  for (int i = 0; i < 75; ++i) {
    b.Put(i % 4, "k", "v" + std::to_string(i), i * 10, i * 10 + 5, 2 + i);
    b.Get(4, "k", i * 10 + 6, i * 10 + 7, "v" + std::to_string(i), 2 + i, 2 + i);
  }
  LinearizabilityOptions o;
  o.max_steps_per_key = 100;
  LinearizabilityResult r = CheckLinearizability(b.history(), o);
  EXPECT_EQ(r.verdict, V::kInconclusive);
  EXPECT_FALSE(CheckLinearizable(b.history(), o).passed);
  EXPECT_TRUE(CheckLinearizability(b.history()).ok());
  b.Get(0, "k", 2000, 2001, "nobody-wrote-this", 50);
  EXPECT_EQ(CheckLinearizability(b.history(), o).verdict, V::kInconclusive);
  EXPECT_EQ(CheckLinearizability(b.history()).verdict, V::kNotLinearizable);
}

}  // namespace
}  // namespace faultline::verify

namespace faultline::verify {
namespace {

using testing::HistoryBuilder;

TEST(Linearizability, HeaderRevisionsOrderOpsOnAKey) {
  // The read answered at store revision 10 without the put that got revision 5: the put had been
  // applied by then, so the read is stale although the two overlap in time.
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 10, 5);
  b.Get(1, "k", 1, 2, std::nullopt, 0, 10);
  EXPECT_FALSE(CheckLinearizability(b.history()).ok());
  // Answered at revision 4, before the put: fine.
  HistoryBuilder ok;
  ok.Put(0, "k", "a", 0, 10, 5);
  ok.Get(1, "k", 1, 2, std::nullopt, 0, 4);
  EXPECT_TRUE(CheckLinearizability(ok.history()).ok());
  // The store revision never goes back: a later read cannot be served at an older revision.
  HistoryBuilder back;
  back.Put(0, "k", "a", 0, 1, 2);
  back.Get(1, "k", 2, 3, "a", 2, 10);
  back.Get(2, "k", 4, 5, "a", 2, 8);
  EXPECT_FALSE(CheckLinearizability(back.history()).ok());
}

}  // namespace
}  // namespace faultline::verify

namespace faultline::verify {
namespace {

TEST(Linearizability, LateFailureInALongKeyIsProvenOnASmallWindow) {
  // 3000 sequential writes and reads, then a stale read: the failure is shown on a window near
  // the end, not by searching back to the start.
  testing::HistoryBuilder b;
  int64_t t = 0, rev = 1;
  for (int i = 0; i < 3000; ++i) {
    std::string v = "v" + std::to_string(i);
    b.Put(i % 4, "k", v, t, t + 3, ++rev);
    b.Get((i + 1) % 4, "k", t + 1, t + 4, v, rev, rev);
    t += 5;
  }
  int64_t bad = b.Get(0, "k", t + 1, t + 2, "v2990", 2 + 2990, rev).id;
  LinearizabilityResult r = CheckLinearizability(b.history());
  ASSERT_EQ(r.verdict, LinearizabilityResult::Verdict::kNotLinearizable);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].failing_op, bad);
  EXPECT_EQ(r.failures[0].key_ops, 6001u);
  EXPECT_LT(r.failures[0].prefix_ops, 100u);
  EXPECT_NE(r.failures[0].explanation.find("window"), std::string::npos);
  EXPECT_LT(r.steps, 100'000u);
}

}  // namespace
}  // namespace faultline::verify
namespace faultline::verify {
namespace {

using testing::HistoryBuilder;
using V = LinearizabilityResult::Verdict;

// Sequential put/get pairs on `key` from time t: each pair is its own quiescent segment.
void Pairs(HistoryBuilder* b, const std::string& key, int n, int64_t* t, int64_t* rev) {
  for (int i = 0; i < n; ++i) {
    std::string v = key + "-" + std::to_string(*rev + 1);
    b->Put(i % 3, key, v, *t, *t + 2, ++*rev);
    b->Get((i + 1) % 3, key, *t + 3, *t + 4, v, *rev, *rev);
    *t += 5;
  }
}

TEST(Linearizability, UnknownWriteTakesEffectSegmentsAfterItsTimeout) {
  // "x" times out early; reads in later quiescent segments still see the old value, then x (at
  // the revision it got then), then what was written after it.
  HistoryBuilder b;
  int64_t t = 0, rev = 1;
  Pairs(&b, "k", 3, &t, &rev);
  b.Put(0, "k", "x", t, t + 1, 0, Outcome::kUnknown);
  t += 2;
  std::string before = "k-" + std::to_string(rev);
  for (int i = 0; i < 5; ++i, t += 2) b.Get(1, "k", t, t + 1, before, rev, rev + i);
  b.Get(2, "k", t, t + 1, "x", rev + 7, rev + 7);
  t += 2;
  b.Put(1, "k", "y", t, t + 1, rev + 8);
  b.Get(2, "k", t + 2, t + 3, "y", rev + 8, rev + 8);
  LinearizabilityResult r = CheckLinearizability(b.history());
  EXPECT_TRUE(r.ok()) << r.Summary();
  // Once x was seen, the old value cannot come back.
  int64_t bad = b.Get(0, "k", t + 4, t + 5, before, rev, rev + 8).id;
  r = CheckLinearizability(b.history());
  ASSERT_EQ(r.verdict, V::kNotLinearizable);
  EXPECT_EQ(r.failures[0].failing_op, bad);
}

TEST(Linearizability, ProvenUnknownWriteHasTheRevisionItsReadSaw) {
  // The read says "x" was written at revision 6: a read served at store revision 6 cannot have
  // found the key absent, however the writes are ordered.
  HistoryBuilder b;
  b.Put(0, "k", "x", 0, 1, 0, Outcome::kUnknown);
  b.Get(1, "k", 2, 3, std::nullopt, 0, 6);
  b.Get(2, "k", 4, 5, "x", 6, 6);
  EXPECT_EQ(CheckLinearizability(b.history()).verdict, V::kNotLinearizable);
  HistoryBuilder ok;  // absent at store revision 5: before the write
  ok.Put(0, "k", "x", 0, 1, 0, Outcome::kUnknown);
  ok.Get(1, "k", 2, 3, std::nullopt, 0, 5);
  ok.Get(2, "k", 4, 5, "x", 6, 6);
  EXPECT_TRUE(CheckLinearizability(ok.history()).ok());
  HistoryBuilder two;  // two writes cannot share revision 4
  two.Put(0, "k", "a", 0, 1, 4);
  two.Put(1, "k", "x", 2, 3, 0, Outcome::kUnknown);
  two.Get(2, "k", 4, 5, "x", 4, 4);
  EXPECT_EQ(CheckLinearizability(two.history()).verdict, V::kNotLinearizable);
}

TEST(Linearizability, ReadCannotSeeAChangeNewerThanItsStoreRevision) {
  HistoryBuilder b;
  b.Put(0, "k", "x", 0, 1, 0, Outcome::kUnknown);
  int64_t bad = b.Get(1, "k", 2, 3, "x", 13, 12).id;
  LinearizabilityResult r = CheckLinearizability(b.history());
  ASSERT_EQ(r.verdict, V::kNotLinearizable);
  EXPECT_EQ(r.failures[0].failing_op, bad);
}

TEST(Linearizability, UnobservedUnknownWritesEachTakeEffectAtMostOnce) {
  // Nobody ever reads "x" or "y", but two deletes found the key, which only they can explain.
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Del(1, "k", 2, 3, 1, 3);
  b.Put(0, "k", "x", 4, 5, 0, Outcome::kUnknown);
  b.Del(1, "k", 10, 11, 1, 5);
  b.Get(2, "k", 12, 13, std::nullopt, 0, 5);
  EXPECT_TRUE(CheckLinearizability(b.history()).ok());
  HistoryBuilder twice = b;
  twice.Del(1, "k", 20, 21, 1, 7);  // x cannot be applied again
  EXPECT_EQ(CheckLinearizability(twice.history()).verdict, V::kNotLinearizable);
  twice.Put(0, "k", "y", 14, 15, 0, Outcome::kUnknown);  // but another unknown write can do it
  EXPECT_TRUE(CheckLinearizability(twice.history()).ok());
}

TEST(Linearizability, UnknownCreateOnlyWritesWhereTheKeyIsAbsent) {
  // An unknown compare-and-set on absence (its value never read) can explain one delete that
  // found the key, at a point where the key was absent.
  HistoryBuilder b;
  b.Put(1, "k", "a", 0, 1, 2);
  b.Cas(0, "k", std::nullopt, "c", 2, 3, false, 0, Outcome::kUnknown);
  b.Del(2, "k", 4, 5, 1, 3);
  b.Del(2, "k", 6, 7, 1, 4);  // c applied after the first delete
  EXPECT_TRUE(CheckLinearizability(b.history()).ok());
  HistoryBuilder present = b;  // ...but not while "a" was there, and not twice
  present.Del(2, "k", 8, 9, 1, 5);
  EXPECT_EQ(CheckLinearizability(present.history()).verdict, V::kNotLinearizable);
  HistoryBuilder never;  // the key was never absent after c was invoked: c cannot help
  never.Put(1, "k", "a", 0, 1, 2);
  never.Cas(0, "k", std::nullopt, "c", 2, 3, false, 0, Outcome::kUnknown);
  never.Put(1, "k", "b", 4, 5, 3);
  never.Get(2, "k", 6, 7, "b", 3, 3);
  never.Del(2, "k", 8, 9, 1, 4);
  never.Del(2, "k", 10, 11, 1, 5);
  EXPECT_TRUE(CheckLinearizability(never.history()).ok()) << "c after the first delete";
  never.Get(2, "k", 12, 13, std::nullopt, 0, 5);
  never.Del(2, "k", 14, 15, 1, 6);
  EXPECT_EQ(CheckLinearizability(never.history()).verdict, V::kNotLinearizable);
}

TEST(Linearizability, UnknownDeleteExplainsAbsenceButValuesDoNotComeBack) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Del(1, "k", 2, 3, 0, 0, Outcome::kUnknown);
  b.Get(2, "k", 4, 5, std::nullopt, 0, 3);
  EXPECT_TRUE(CheckLinearizability(b.history()).ok());
  b.Get(2, "k", 6, 7, "a", 2, 3);
  EXPECT_EQ(CheckLinearizability(b.history()).verdict, V::kNotLinearizable);
}

TEST(Linearizability, FailureInALongSegmentWithWritesAlwaysInFlight) {
  // Four clients overlap all the time, so the key never goes quiet; a stale read in the middle
  // is still shown on a handful of ops, from a point where writes were in flight.
  HistoryBuilder b;
  int64_t rev = 1;
  int64_t bad = -1;
  for (int i = 0; i < 2000; ++i) {
    int64_t t = i * 10;
    std::string v = "v" + std::to_string(i);
    b.Put(i % 4, "k", v, t, t + 25, ++rev);
    if (i == 1000) {
      bad = b.Get(4, "k", t + 26, t + 27, "v990", 2 + 990, rev).id;
    } else {
      b.Get(5 + i % 2, "k", t + 26, t + 27, v, rev, rev);
    }
  }
  LinearizabilityResult r = CheckLinearizability(b.history());
  ASSERT_EQ(r.verdict, V::kNotLinearizable);
  ASSERT_EQ(r.failures.size(), 1u);
  const KeyFailure& f = r.failures[0];
  EXPECT_EQ(f.failing_op, bad);
  EXPECT_EQ(f.segment, 0u) << "no quiescent point before it";
  EXPECT_LE(f.window.size() - f.context_ops, 6u) << RenderFailure(f);
  EXPECT_EQ(f.start_state, "any state");
  EXPECT_LT(r.steps, 1'000'000u);
}

TEST(Linearizability, FailureReportNamesTheStateAndTheLongestLinearization) {
  HistoryBuilder b;
  int64_t t = 0, rev = 1;
  Pairs(&b, "k", 20, &t, &rev);
  // A read that returns before a write invoked after it returned: it saw the future.
  int64_t bad = b.Get(0, "k", t, t + 1, "future", rev + 1, rev + 1).id;
  int64_t writer = b.Put(1, "k", "future", t + 2, t + 3, rev + 1).id;
  LinearizabilityResult r = CheckLinearizability(b.history());
  ASSERT_EQ(r.verdict, V::kNotLinearizable);
  const KeyFailure& f = r.failures[0];
  EXPECT_EQ(f.failing_op, bad);
  EXPECT_EQ(f.segment, 40u);
  EXPECT_EQ(f.segments, 42u);
  EXPECT_FALSE(f.stuck_state.empty());
  // The value's writer is shown as context although it comes later.
  bool has_writer = false;
  for (const Op& op : f.window) has_writer = has_writer || op.id == writer;
  EXPECT_TRUE(has_writer) << RenderFailure(f);
  EXPECT_NE(RenderFailure(f).find("> op " + std::to_string(bad)), std::string::npos);
}

TEST(Linearizability, GeneratedHistoriesPassAndAStaleReadInThemIsFound) {
  // Histories produced by executing each op atomically inside its interval against an etcd
  // model (linearizable by construction), with many unknown outcomes and clients; then the same
  // with one read made stale. Never a false alarm, never a missed stale read.
  int stale_found = 0;
  for (int i = 0; i < 150; ++i) {
    bench::GenOptions g;
    g.ops = 200 + (i * 37) % 800;
    g.keys = 1 + i % 3;
    g.clients = 2 + (i * 7) % 20;
    g.seed = 1000 + i;
    g.unknown_fraction = (i % 4) * 0.1;
    History h = bench::Generate(g);
    LinearizabilityResult r = CheckLinearizability(h);
    ASSERT_EQ(r.verdict, V::kLinearizable) << "seed " << g.seed << ": " << r.Summary();
    g.stale_read_at = 0.3 + (i % 5) * 0.1;
    int64_t stale = -1;
    History bad = bench::Generate(g, &stale);
    if (stale < 0) continue;  // no read after that point fitted
    r = CheckLinearizability(bad);
    ASSERT_EQ(r.verdict, V::kNotLinearizable) << "seed " << g.seed;
    EXPECT_EQ(r.failures[0].failing_op, stale) << "seed " << g.seed << ": " << r.Summary();
    ++stale_found;
  }
  EXPECT_GT(stale_found, 100);
}

}  // namespace
}  // namespace faultline::verify
