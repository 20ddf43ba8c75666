#include "faults/core/journal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace faultline::faults {
namespace {

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/faultline-journal-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static v1::JournalRecord Rec(v1::JournalRecord::Op op, const std::string& id,
                               const std::string& state = "") {
    v1::JournalRecord r;
    r.set_op(op);
    r.set_fault_id(id);
    r.set_state(state);
    r.mutable_spec()->mutable_process()->mutable_target()->set_pid(42);
    return r;
  }

  std::filesystem::path dir_;
};

TEST_F(JournalTest, AppendsAndReplaysInOrder) {
  {
    Journal j(dir_);
    EXPECT_TRUE(j.replayed().empty());
    j.Append(Rec(v1::JournalRecord::INTENT_APPLY, "a", R"({"x":1})"));
    j.Append(Rec(v1::JournalRecord::APPLIED, "a"));
    j.Append(Rec(v1::JournalRecord::INTENT_APPLY, "b"));
  }
  Journal j(dir_);
  ASSERT_EQ(j.replayed().size(), 3u);
  EXPECT_EQ(j.replayed()[0].fault_id(), "a");
  EXPECT_EQ(j.replayed()[0].state(), R"({"x":1})");
  EXPECT_EQ(j.replayed()[0].spec().process().target().pid(), 42);
  EXPECT_LT(j.replayed()[0].seq(), j.replayed()[2].seq());
  EXPECT_GT(j.replayed()[0].time().seconds(), 0);
  EXPECT_EQ(j.torn_bytes(), 0u);
}

TEST_F(JournalTest, TornLastRecordIsDroppedAndEarlierOnesKept) {
  {
    Journal j(dir_);
    j.Append(Rec(v1::JournalRecord::INTENT_APPLY, "a"));
    j.Append(Rec(v1::JournalRecord::INTENT_APPLY, "b"));
  }
  auto path = dir_ / "journal.log";
  auto size = std::filesystem::file_size(path);
  // A crash in the middle of the second record's write.
  std::filesystem::resize_file(path, size - 5);
  {
    Journal j(dir_);
    ASSERT_EQ(j.replayed().size(), 1u);
    EXPECT_EQ(j.replayed()[0].fault_id(), "a");
    EXPECT_GT(j.torn_bytes(), 0u);
    // Appending after the cut must produce a readable journal.
    j.Append(Rec(v1::JournalRecord::REVERTED, "a"));
  }
  Journal j(dir_);
  ASSERT_EQ(j.replayed().size(), 2u);
  EXPECT_EQ(j.replayed()[1].op(), v1::JournalRecord::REVERTED);
  EXPECT_EQ(j.torn_bytes(), 0u);
}

TEST_F(JournalTest, CorruptChecksumStopsReplayThere) {
  {
    Journal j(dir_);
    j.Append(Rec(v1::JournalRecord::INTENT_APPLY, "a"));
    j.Append(Rec(v1::JournalRecord::INTENT_APPLY, "b"));
  }
  auto path = dir_ / "journal.log";
  auto size = std::filesystem::file_size(path);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 2));
    f.put('\x7f');
  }
  Journal j(dir_);
  EXPECT_EQ(j.replayed().size(), 1u);
}

TEST_F(JournalTest, OutstandingIgnoresRevertedAndKeepsNewestState) {
  std::vector<v1::JournalRecord> recs = {
      Rec(v1::JournalRecord::INTENT_APPLY, "a", R"({"v":1})"),
      Rec(v1::JournalRecord::APPLIED, "a", R"({"v":2})"),
      Rec(v1::JournalRecord::INTENT_APPLY, "b"),
      Rec(v1::JournalRecord::INTENT_REVERT, "b"),
      Rec(v1::JournalRecord::REVERTED, "b"),
      Rec(v1::JournalRecord::INTENT_APPLY, "c"),
      Rec(v1::JournalRecord::REVERT_FAILED, "c"),
  };
  auto out = Journal::Outstanding(recs);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].fault_id(), "a");
  EXPECT_EQ(out[0].state(), R"({"v":2})");
  EXPECT_EQ(out[0].spec().process().target().pid(), 42);
  EXPECT_EQ(out[1].fault_id(), "c");
}

TEST_F(JournalTest, CompactKeepsOnlyGivenRecordsAndStaysLocked) {
  Journal j(dir_);
  j.Append(Rec(v1::JournalRecord::INTENT_APPLY, "a"));
  j.Append(Rec(v1::JournalRecord::REVERTED, "a"));
  j.Compact({Rec(v1::JournalRecord::INTENT_APPLY, "z")});
  j.Append(Rec(v1::JournalRecord::APPLIED, "z"));
  EXPECT_THROW(Journal second(dir_), FaultError);  // still locked by `j`
}

TEST_F(JournalTest, SecondAgentOnSameStateDirIsRefused) {
  Journal j(dir_);
  try {
    Journal other(dir_);
    FAIL() << "expected the state dir to be locked";
  } catch (const FaultError& e) {
    EXPECT_NE(std::string(e.what()).find("in use by another faultline-agent"), std::string::npos);
  }
}

}  // namespace
}  // namespace faultline::faults
