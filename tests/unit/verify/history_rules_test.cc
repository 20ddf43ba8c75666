// Serializable reads, unknown outcomes proven by watches and the final read, and checks that saw
// nothing: each rule with a hand-written history that holds and one that breaks it.
#include <gtest/gtest.h>

#include <functional>

#include "controller/verify/history_checks.h"
#include "controller/verify/linearizability.h"
#include "tests/unit/verify/history_builder.h"

namespace faultline::verify {
namespace {

using testing::HistoryBuilder;

Op& Serializable(Op& op, const std::string& member) {
  op.serializable = true;
  op.endpoint = member;
  return op;
}

// a at revision 2, b at revision 3, a linearizable read after both.
HistoryBuilder TwoWrites() {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Put(0, "k", "b", 2, 3, 3);
  b.Get(0, "k", 20, 21, "b", 3, 3);
  return b;
}

TEST(SerializableReads, AStaleButPossibleStateHolds) {
  HistoryBuilder b = TwoWrites();
  // A lagging member still at revision 2 shows a: stale, but the state it had then.
  Serializable(b.Get(1, "k", 4, 5, "a", 2, 2), "m1");
  // Later the same member caught up.
  Serializable(b.Get(1, "k", 6, 7, "b", 3, 3), "m1");
  // Before anything was written it held nothing.
  Serializable(b.Get(2, "k", 0, 1, std::nullopt, 0, 1), "m2");
  CheckResult r = CheckSerializableReads(b.history());
  EXPECT_TRUE(r.passed) << r.summary << r.evidence.dump(2);
  EXPECT_EQ(r.evidence["serializable_reads"], 3);
  // And the linearizability check does not judge them.
  EXPECT_TRUE(CheckLinearizable(b.history()).passed);
}

// One history per broken rule; the finding names the read.
TEST(SerializableReads, EachImpossibleStateIsNamed) {
  struct Case {
    const char* problem;
    std::function<Op&(HistoryBuilder&)> add;
  };
  std::vector<Case> cases = {
      {"value no write produced",
       [](HistoryBuilder& b) -> Op& {
         return Serializable(b.Get(1, "k", 4, 5, "zz", 2, 3), "m1");
       }},
      {"stale at its own revision",
       // Revision 3 answered, but the key shows a at 2 although b was written at 3.
       [](HistoryBuilder& b) -> Op& { return Serializable(b.Get(1, "k", 4, 5, "a", 2, 3), "m1"); }},
      {"revision not yet committed when the read returned",
       // Revision 9 at a time when a linearizable read invoked later saw 3.
       [](HistoryBuilder& b) -> Op& { return Serializable(b.Get(1, "k", 4, 5, "b", 3, 9), "m1"); }},
      {"value written only after the read returned",
       [](HistoryBuilder& b) -> Op& {
         b.Put(2, "k", "c", 30, 31, 4);
         return Serializable(b.Get(1, "k", 4, 5, "c", 4, 4), "m1");
       }},
      {"value at another mod revision than its write",
       [](HistoryBuilder& b) -> Op& { return Serializable(b.Get(1, "k", 4, 5, "b", 2, 3), "m1"); }},
      {"absent at a revision where the key exists",
       [](HistoryBuilder& b) -> Op& {
         return Serializable(b.Get(1, "k", 4, 5, std::nullopt, 0, 3), "m1");
       }},
      {"went back on its client and member",
       [](HistoryBuilder& b) -> Op& {
         Serializable(b.Get(1, "k", 4, 5, "b", 3, 3), "m1");
         // Same member, same client: a again, at revision 2 (an older state than it showed).
         return Serializable(b.Get(1, "k", 6, 7, "a", 2, 2), "m1");
       }},
  };
  for (const Case& c : cases) {
    HistoryBuilder b = TwoWrites();
    const int64_t id = c.add(b).id;
    CheckResult r = CheckSerializableReads(b.history());
    EXPECT_FALSE(r.passed) << c.problem;
    ASSERT_FALSE(r.evidence["examples"].empty()) << c.problem;
    const auto& first = r.evidence["examples"][0];
    EXPECT_EQ(first["problem"], c.problem) << r.evidence.dump(2);
    EXPECT_EQ(first["read"]["id"], id) << c.problem;
    EXPECT_NE(r.summary.find("op " + std::to_string(id)), std::string::npos) << r.summary;
  }
}

TEST(SerializableReads, AbsentAfterAnUnknownDeleteHolds) {
  HistoryBuilder b = TwoWrites();
  b.Del(2, "k", 3, 4, 0, 0, Outcome::kUnknown);
  Serializable(b.Get(1, "k", 5, 6, std::nullopt, 0, 3), "m1");
  CheckResult r = CheckSerializableReads(b.history());
  EXPECT_TRUE(r.passed) << r.evidence.dump(2);
}

// An unknown put seen by nothing may or may not have happened; one a watch saw happened, at the
// watch's revision, so a later read that misses it is a violation.
TEST(UnknownOutcomes, AWatchEventProvesAnUnknownWrite) {
  HistoryBuilder b;
  b.Put(0, "k", "x", 0, 1, 0, Outcome::kUnknown);
  const int64_t read = b.Get(1, "k", 5, 6, std::nullopt, 0, 3).id;
  b.Put(1, "other", "o", 2, 3, 3);
  LinearizabilityResult unproven = CheckLinearizability(b.history());
  EXPECT_TRUE(unproven.ok()) << unproven.Summary();
  EXPECT_EQ(unproven.unknown_unresolved, 1u);

  b.history().watch_events.push_back({"m0", 2, "k", false, "x", 0});
  LinearizabilityResult proven = CheckLinearizability(b.history());
  EXPECT_FALSE(proven.ok()) << proven.Summary();
  ASSERT_FALSE(proven.failures.empty());
  EXPECT_EQ(proven.failures[0].failing_op, read) << proven.failures[0].explanation;
  EXPECT_EQ(proven.unknown_proven_by_watch, 1u);
  EXPECT_EQ(proven.unknown_unresolved, 0u);
}

// Two unknown puts proven at consecutive revisions (a watch saw one, a read the other) with
// nothing answered between them: both happened, one after the other. The search once refused to
// apply a pending write right after another pending one, which is sound only for writes that
// may not have happened; on the lab it failed 2 of 4 partition runs of a correct etcd.
TEST(UnknownOutcomes, ProvenWritesAppliedBackToBackAreLinearizable) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 1);
  b.Put(1, "k", "b", 20, 1000, 0, Outcome::kUnknown);
  b.Put(2, "k", "c", 30, 1001, 0, Outcome::kUnknown);
  b.Put(3, "k", "d", 40, 1002, 0, Outcome::kUnknown);
  const int64_t read = b.Get(3, "k", 1003, 1010, "d", 3, 4).id;
  b.history().watch_events.push_back({"m0", 2, "k", false, "c", 0});
  LinearizabilityResult r = CheckLinearizability(b.history());
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.unknown_proven_by_watch, 1u);
  EXPECT_EQ(r.unknown_proven_by_read, 1u);
  // Still a checker that can fail: the read cannot see "d" at a revision below c's.
  HistoryBuilder bad = b;
  for (Op& op : bad.history().ops) {
    if (op.id == read) op.read_mod_revision = 2;
  }
  EXPECT_FALSE(CheckLinearizability(bad.history()).ok());
}

TEST(UnknownOutcomes, TheReportCountsWhatWasProvenAndWhatStayedUnknown) {
  HistoryBuilder b;
  b.Put(0, "k", "x", 0, 1, 0, Outcome::kUnknown);  // seen by a watch
  b.Put(1, "j", "y", 0, 1, 0, Outcome::kUnknown);  // in the final state
  b.Put(2, "i", "z", 0, 1, 0, Outcome::kUnknown);  // read
  b.Get(2, "i", 4, 5, "z", 4, 4);
  b.Put(0, "h", "w", 0, 1, 0, Outcome::kUnknown);                          // nobody saw it
  b.Cas(1, "h", "never-written", "v", 2, 3, false, 0, Outcome::kUnknown);  // cannot have held
  b.history().watch_events.push_back({"m0", 2, "k", false, "x", 0});
  b.history().final_reads.push_back({"j", true, "y", 3});
  b.history().final_reads.push_back({"h", false, "", 0});
  CheckResult r = CheckLinearizable(b.history());
  EXPECT_TRUE(r.passed) << r.summary;
  const auto& u = r.evidence["unknown_outcomes"];
  EXPECT_EQ(u["ops"], 5);
  EXPECT_EQ(u["proven_by_watch"], 1);
  EXPECT_EQ(u["proven_by_final_read"], 1);
  EXPECT_EQ(u["proven_by_read"], 1);
  EXPECT_EQ(u["no_effect"], 1);
  EXPECT_EQ(u["still_unknown"], 1);
  EXPECT_NE(r.summary.find("1 still unknown"), std::string::npos) << r.summary;
}

TEST(UnknownOutcomes, TheFinalStateProvesAnUnknownWriteAtItsRevision) {
  HistoryBuilder b;
  b.Put(0, "k", "x", 0, 1, 0, Outcome::kUnknown);
  // A read at revision 5 found the key absent; the final read says x was written at 4: x was
  // there at 5, so the read is wrong.
  const int64_t read = b.Get(1, "k", 6, 7, std::nullopt, 0, 5).id;
  b.Put(1, "other", "o", 2, 3, 5);
  b.history().final_reads.push_back({"k", true, "x", 4});
  LinearizabilityResult r = CheckLinearizability(b.history());
  EXPECT_FALSE(r.ok()) << r.Summary();
  ASSERT_FALSE(r.failures.empty());
  EXPECT_EQ(r.failures[0].failing_op, read);
  EXPECT_EQ(r.unknown_proven_by_final, 1u);
}

TEST(NoEvidence, AnEmptyHistoryPassesNothing) {
  History empty;
  std::vector<CheckResult> rs = CheckHistory(empty);
  for (const CheckResult& r : rs) {
    EXPECT_FALSE(r.passed) << r.name;
    EXPECT_TRUE(r.no_evidence) << r.name;
    EXPECT_EQ(r.summary.rfind("nothing to check: ", 0), 0u) << r.summary;
  }
  EXPECT_FALSE(AllPassed(rs));
  EXPECT_NE(RenderTable(rs).find("none"), std::string::npos);
  EXPECT_FALSE(ToJson(rs)["passed"].get<bool>());
}

TEST(NoEvidence, ACheckWithoutEvidenceNeitherPassesNorFailsTheOthers) {
  HistoryBuilder b = TwoWrites();  // no watcher, no serializable read
  std::vector<CheckResult> rs = CheckHistory(b.history());
  for (const CheckResult& r : rs) {
    bool none = r.name == "watch" || r.name == "serializable-reads";
    EXPECT_EQ(r.no_evidence, none) << r.name << ": " << r.summary;
    EXPECT_EQ(r.passed, !none) << r.name << ": " << r.summary;
  }
  EXPECT_TRUE(AllPassed(rs));
  // Writes with no read after them: the lost-writes check saw nothing.
  HistoryBuilder w;
  w.Put(0, "k", "a", 0, 1, 2);
  CheckResult lw = CheckLostWrites(w.history());
  EXPECT_TRUE(lw.no_evidence) << lw.summary;
  EXPECT_FALSE(lw.passed);
}

}  // namespace
}  // namespace faultline::verify
