// Hand-built histories with a known verdict for the linearizability checker and the
// lost-write check.
#include "controller/etcd/linearizability.h"

#include <gtest/gtest.h>

#include "controller/etcd/history_checks.h"
#include "tests/unit/verify/history_builder.h"

namespace faultline::controller::etcd {
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
  HistoryBuilder b;
  for (int i = 0; i < 12; ++i) b.Put(i, "k", "v" + std::to_string(i), 0, 100, 0, Outcome::kUnknown);
  b.Get(0, "k", 200, 201, "nobody-wrote-this", 50);
  LinearizabilityOptions o;
  o.max_steps_per_key = 100;
  LinearizabilityResult r = CheckLinearizability(b.history(), o);
  EXPECT_EQ(r.verdict, V::kInconclusive);
  EXPECT_FALSE(CheckLinearizable(b.history(), o).passed);
}

}  // namespace
}  // namespace faultline::controller::etcd

namespace faultline::controller::etcd {
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
}  // namespace faultline::controller::etcd
