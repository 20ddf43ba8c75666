// The overlay's crash model, seen from outside: a separate program (crash_writer) writes under
// the mount, the crash kills it (its wait status says SIGKILL), and what survived is read from
// the real files underneath through a directory fd opened before the mount.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstring>

#include "faults/io/overlay.h"
#include "io_test_util.h"

namespace faultline::faults::io {
namespace {

using namespace std::chrono_literals;

std::string WriterBinary() {
  return std::string(FAULTLINE_BINARY_DIR) + "/tests/integration/io/io_crash_writer";
}

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<io_test::TempDir>("crash");
    dir_ = tmp_->path() / "data";
    std::filesystem::create_directory(dir_);
    under_ = ::open(dir_.c_str(), O_PATH | O_DIRECTORY);
    ASSERT_GE(under_, 0);
  }
  void TearDown() override {
    writers_.clear();
    overlay_.reset();
    ::close(under_);
    tmp_.reset();
  }
  // Written and fsynced before the mount: the synced state a crash returns to.
  void Seed(const std::string& rel, const std::string& data) {
    int fd = ::openat(under_, rel.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(::fsync(fd), 0);
    ::close(fd);
  }
  std::string ReadUnder(const std::string& rel) { return io_test::ReadAll(under_, rel); }

  std::string ReadOverlay(const std::string& rel) {
    return io_test::ReadAll(AT_FDCWD, (dir_ / rel).string());
  }

  void Mount() { overlay_ = std::make_unique<Overlay>(dir_); }
  std::shared_ptr<Rule> Arm(RuleKind kind, const std::string& glob,
                            const std::function<void(RuleSpec&)>& more = {}) {
    RuleSpec s;
    s.kind = kind;
    s.path_glob = glob;
    s.seed = 11;
    if (more) more(s);
    return overlay_->Arm(s);
  }
  // Starts crash_writer with `args` (FILE names relative to the mount) and, unless the crash
  // is expected to end it first, waits for its "done".
  io_test::Child& Writer(std::vector<std::string> args, bool wait_done = true) {
    std::vector<std::string> argv = {WriterBinary()};
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--sync") {
        argv.push_back(args[i]);
      } else if (args[i] == "--at") {
        argv.push_back(args[i]);
        argv.push_back(args.at(++i));
      } else {  // FILE DATA
        argv.push_back((dir_ / args[i]).string());
        argv.push_back(args.at(++i));
      }
    }
    log_ = (tmp_->path() / ("writer" + std::to_string(writers_.size()) + ".log")).string();
    writers_.push_back(std::make_unique<io_test::Child>(argv, log_));
    auto& w = *writers_.back();
    if (wait_done) {
      EXPECT_TRUE(io_test::WaitFor(
          [&] { return io_test::Slurp(log_).find("done") != std::string::npos; }, 10s))
          << io_test::Slurp(log_);
    }
    return w;
  }
  // A crash an op triggered completes on the overlay's own thread after its victims are gone:
  // wait for it before reading what it left.
  void WaitCrashes(int64_t n) {
    ASSERT_TRUE(io_test::WaitFor(
        [&] {
          auto c = overlay_->Crashes();
          return c.crashes >= n && !c.crashing;
        },
        10s))
        << "crash " << n << " never completed";
  }
  // The writer's wait status once it ended (or -1 after `limit`).
  static int Ended(io_test::Child& w, std::chrono::milliseconds limit = 10s) {
    int status = -1;
    io_test::WaitFor([&] { return !w.Running(); }, limit);
    if (!w.Running()) status = w.Stop(0);
    return status;
  }

  std::unique_ptr<io_test::TempDir> tmp_;
  std::filesystem::path dir_;
  int under_ = -1;
  std::unique_ptr<Overlay> overlay_;
  std::vector<std::unique_ptr<io_test::Child>> writers_;
  std::string log_;
};

bool KilledBySigkill(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }

TEST_F(CrashTest, LoseUnsyncedDropsWhatWasNeverSyncedAndKeepsWhatWas) {
  Seed("nosync", "old-nosync");
  Seed("synced", "old-synced");
  Mount();
  auto rule = Arm(RuleKind::kLoseUnsynced, "**");
  auto& a = Writer({"nosync", "NEW-DATA-NEVER-SYNCED", "fresh", "created-unsynced"});
  auto& b = Writer({"--sync", "synced", "NEW-SYNCED"});
  // Before the crash the page cache and the real file both hold the new data.
  EXPECT_EQ(ReadUnder("nosync"), "NEW-DATA-NEVER-SYNCED");
  EXPECT_GT(overlay_->Crashes().unsynced_bytes, 0u);

  ASSERT_TRUE(overlay_->Crash());
  EXPECT_TRUE(KilledBySigkill(Ended(a))) << "the unsynced writer must be killed by the crash";
  EXPECT_TRUE(KilledBySigkill(Ended(b)));
  EXPECT_EQ(ReadUnder("nosync"), "old-nosync");
  EXPECT_EQ(ReadUnder("synced"), "NEW-SYNCED") << "fsynced data survives the crash";
  EXPECT_EQ(ReadUnder("fresh"), "") << "a never-synced new file goes back to size 0";
  // The kernel's cached pages were dropped: the overlay shows the disk's state too.
  EXPECT_EQ(ReadOverlay("nosync"), "old-nosync");
  auto st = overlay_->Crashes();
  EXPECT_EQ(st.crashes, 1);
  EXPECT_EQ(st.unsynced_bytes, 0u);
  EXPECT_GT(rule->effect(), 0);
  std::cerr << "crash: " << st.last << "\n";

  // Tracking goes on from the new synced state.
  auto& c = Writer({"nosync", "again"});
  ASSERT_TRUE(overlay_->Crash());
  EXPECT_TRUE(KilledBySigkill(Ended(c)));
  EXPECT_EQ(ReadUnder("nosync"), "old-nosync");
}

// What a program that saves a file "atomically" without syncing the directory (write a temp
// file, fsync it, rename it over the old one) gets after a power cut: the old name and content.
// Only a directory fsync makes names durable. Done by this process through the mount, with every
// fd closed before the crash, so the crash kills nobody.
TEST_F(CrashTest, NamesChangedSinceTheirDirectorysLastFsyncAreUndone) {
  Seed("db", "OLD-DB");
  Seed("victim", "VICTIM");
  std::filesystem::create_directory(dir_ / "sub");
  Mount();
  Arm(RuleKind::kLoseUnsynced, "**", [](RuleSpec& s) { s.names = true; });
  auto write_synced = [&](const std::string& rel, const std::string& data) {
    int fd = ::open((dir_ / rel).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0) << rel;
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(::fsync(fd), 0);
    ::close(fd);
  };
  auto sync_dir = [&](const std::string& rel) {
    int fd = ::open((dir_ / rel).c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0) << rel;
    ASSERT_EQ(::fsync(fd), 0);
    ::close(fd);
  };
  auto rename = [&](const std::string& from, const std::string& to) {
    ASSERT_EQ(::rename((dir_ / from).c_str(), (dir_ / to).c_str()), 0) << from << " -> " << to;
  };
  write_synced("tmp1", "NEW-DB");
  rename("tmp1", "1.snap.db");
  rename("1.snap.db", "db");  // over the old one
  ASSERT_EQ(::unlink((dir_ / "victim").c_str()), 0);
  ASSERT_EQ(::mkdir((dir_ / "newdir").c_str(), 0755), 0);
  write_synced("sub/kept", "KEPT");  // in a directory that is synced below
  sync_dir("sub");
  EXPECT_EQ(ReadOverlay("db"), "NEW-DB");
  // The kept inodes are invisible through the mount.
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename().string().rfind(".faultline-undo-", 0), std::string::npos)
        << e.path();
  }

  ASSERT_TRUE(overlay_->Crash());
  WaitCrashes(1);
  std::cerr << "crash: " << overlay_->Crashes().last << "\n";
  EXPECT_EQ(ReadUnder("db"), "OLD-DB") << "the rename over it was never made durable";
  EXPECT_EQ(ReadUnder("1.snap.db"), "<No such file or directory>");
  EXPECT_EQ(ReadUnder("tmp1"), "<No such file or directory>") << "nor was its creation";
  EXPECT_EQ(ReadUnder("victim"), "VICTIM") << "an unlink without a directory fsync is undone";
  EXPECT_EQ(ReadUnder("newdir/."), "<No such file or directory>");
  EXPECT_EQ(ReadUnder("sub/kept"), "KEPT") << "its directory was synced";
  // The kernel's cached names were dropped: the mount shows the same.
  EXPECT_EQ(ReadOverlay("db"), "OLD-DB");
  EXPECT_EQ(ReadOverlay("1.snap.db"), "<No such file or directory>");
  EXPECT_EQ(ReadOverlay("victim"), "VICTIM");
  // Nothing kept is left behind underneath.
  for (const auto& e : std::filesystem::recursive_directory_iterator(tmp_->path() / "data")) {
    EXPECT_EQ(e.path().filename().string().rfind(".faultline-undo-", 0), std::string::npos)
        << e.path();
  }

  // With the directory synced, the same sequence survives a crash.
  write_synced("tmp2", "NEWER-DB");
  rename("tmp2", "db");
  ASSERT_EQ(::unlink((dir_ / "victim").c_str()), 0);
  sync_dir(".");
  ASSERT_TRUE(overlay_->Crash());
  WaitCrashes(2);
  EXPECT_EQ(ReadUnder("db"), "NEWER-DB");
  EXPECT_EQ(ReadUnder("tmp2"), "<No such file or directory>");
  EXPECT_EQ(ReadUnder("victim"), "<No such file or directory>");
}

TEST_F(CrashTest, SkipSyncLeavesDataUnsyncedSoTheCrashDropsIt) {
  Seed("log", "base|");
  Mount();
  Arm(RuleKind::kLoseUnsynced, "**");
  auto skip = Arm(RuleKind::kSkipSync, "log");
  auto& w = Writer({"--sync", "--at", "5", "log", "fsynced-but-skipped"});
  EXPECT_GE(skip->effect(), 1);
  ASSERT_TRUE(overlay_->Crash());
  EXPECT_TRUE(KilledBySigkill(Ended(w)));
  EXPECT_EQ(ReadUnder("log"), "base|") << "a skipped fsync made nothing durable";
}

TEST_F(CrashTest, CrashAtKillsTheWriterBeforeOrAfterTheNthWrite) {
  Mount();
  auto rule = Arm(RuleKind::kCrashAt, "*.log", [](RuleSpec& s) {
    s.methods = Bit(Method::kWrite);
    s.crash_at_op = 3;
  });
  auto& w =
      Writer({"--sync", "a.log", "r1|", "a.log", "r2|", "a.log", "r3|", "a.log", "r4|"}, false);
  EXPECT_TRUE(KilledBySigkill(Ended(w)));
  WaitCrashes(1);
  EXPECT_EQ(ReadUnder("a.log"), "r1|r2|") << "the 3rd write never happened";
  EXPECT_EQ(rule->effect(), 1);

  overlay_->Disarm(rule->id());
  Arm(RuleKind::kCrashAt, "*.log", [](RuleSpec& s) {
    s.methods = Bit(Method::kWrite);
    s.crash_at_op = 2;
    s.crash_after_op = true;
  });
  auto& w2 = Writer({"--sync", "b.log", "r1|", "b.log", "r2|", "b.log", "r3|"}, false);
  EXPECT_TRUE(KilledBySigkill(Ended(w2)));
  WaitCrashes(2);
  EXPECT_EQ(ReadUnder("b.log"), "r1|r2|") << "the 2nd write happened, then the crash";
}

TEST_F(CrashTest, CrashAtTheNthFdatasyncOfAFile) {
  Mount();
  Arm(RuleKind::kLoseUnsynced, "**");
  Arm(RuleKind::kCrashAt, "*.wal", [](RuleSpec& s) {
    s.methods = Bit(Method::kFsync) | Bit(Method::kFdatasync);
    s.crash_at_op = 3;
  });
  auto& w =
      Writer({"--sync", "x.wal", "e1|", "x.wal", "e2|", "x.wal", "e3|", "x.wal", "e4|"}, false);
  EXPECT_TRUE(KilledBySigkill(Ended(w)));
  WaitCrashes(1);
  // The 3rd sync never happened: its write was unsynced and is lost with the crash.
  EXPECT_EQ(ReadUnder("x.wal"), "e1|e2|");
}

TEST_F(CrashTest, TornWriteLetsOnlyTheChosenPartsReachTheFile) {
  Mount();
  auto rule = Arm(RuleKind::kTornWrite, "db", [](RuleSpec& s) {
    s.tear_parts = 4;
    s.keep = {1, 3};
  });
  std::string page(16384, 'P');
  for (size_t i = 0; i < page.size(); ++i) page[i] = static_cast<char>('A' + i / 4096);
  auto& w = Writer({"db", page}, false);
  EXPECT_TRUE(KilledBySigkill(Ended(w)));
  WaitCrashes(1);
  std::string want = std::string(4096, '\0') + std::string(4096, 'B') + std::string(4096, '\0') +
                     std::string(4096, 'D');
  std::string got = ReadUnder("db");
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "parts 1 and 3 of 4 only";
  EXPECT_EQ(rule->effect(), 8192);
}

TEST_F(CrashTest, TornWriteChoiceIsSeeded) {
  std::string first;
  for (int run = 0; run < 2; ++run) {
    Mount();
    Arm(RuleKind::kTornWrite, "f", [](RuleSpec& s) { s.tear_parts = 8; });
    auto& w = Writer({"f", "0123456789abcdefghijklmnopqrstuv"}, false);
    EXPECT_TRUE(KilledBySigkill(Ended(w)));
    WaitCrashes(1);
    std::string got = ReadUnder("f");
    EXPECT_NE(got, "0123456789abcdefghijklmnopqrstuv");
    EXPECT_NE(got.find_first_not_of('\0'), std::string::npos) << "some part persisted";
    if (run == 0) first = got;
    EXPECT_EQ(got, first) << "same seed, same tear";
    overlay_.reset();
    ::unlinkat(under_, "f", 0);
  }
}

TEST_F(CrashTest, TornSequenceKeepsOnlyTheChosenWritesSinceTheLastSync) {
  Seed("seq", "");
  Mount();
  auto rule = Arm(RuleKind::kTornSequence, "seq", [](RuleSpec& s) { s.keep = {0, 2}; });
  // Four writes, then one fsync: the tear happens at that sync.
  auto& w = Writer({"seq", "w0|", "seq", "w1|", "seq", "w2|", "--sync", "seq", "w3|"}, false);
  EXPECT_TRUE(KilledBySigkill(Ended(w)));
  WaitCrashes(1);
  std::string got = ReadUnder("seq");
  for (char& c : got) c = c ? c : '.';
  EXPECT_EQ(got, "w0|...w2|") << overlay_->Crashes().last;
  EXPECT_EQ(rule->effect(), 2);
}

TEST_F(CrashTest, PastTheMemoryBoundTheOverlayCrashesEarlyAndSaysSo) {
  Seed("big", std::string(1 << 20, 'o'));
  Mount();
  Arm(RuleKind::kLoseUnsynced, "**", [](RuleSpec& s) { s.max_unsynced_bytes = 100000; });
  std::string chunk(40000, 'n');
  auto& w = Writer(
      {"--at", "0", "big", chunk, "--at", "40000", "big", chunk, "--at", "80000", "big", chunk},
      false);
  EXPECT_TRUE(KilledBySigkill(Ended(w)));
  WaitCrashes(1);
  EXPECT_NE(overlay_->Crashes().last.find("max_unsynced_bytes"), std::string::npos)
      << overlay_->Crashes().last;
  EXPECT_EQ(ReadUnder("big"), std::string(1 << 20, 'o'));
}

TEST_F(CrashTest, CrashAfterADurationEndsLoseUnsyncedByItself) {
  Seed("t", "synced");
  Mount();
  Arm(RuleKind::kLoseUnsynced, "**", [](RuleSpec& s) { s.crash_after = 300ms; });
  auto& w = Writer({"--at", "0", "t", "SYNCED"});
  EXPECT_TRUE(KilledBySigkill(Ended(w)));
  WaitCrashes(1);
  EXPECT_EQ(ReadUnder("t"), "synced");
}

}  // namespace
}  // namespace faultline::faults::io
