#include "deploy/lab/etcd_versions.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace faultline::lab {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// What the three Debian builds accept, as their `--flag=value --version` probes answered.
bool Accepts34(const std::string& name, const std::string&) {
  return name == "snapshot-count" || name == "experimental-compaction-batch-limit" ||
         name == "experimental-watch-progress-notify-interval";
}

TEST(EtcdFlags, ExperimentalFlagsAVersionLacksAreLeftOut) {
  auto c = ChooseEtcdFlags({{"snapshot-count", "100"},
                            {"experimental-compaction-batch-limit", "10"},
                            {"experimental-compaction-sleep-interval", "1s"},
                            {"experimental-snapshot-catchup-entries", "100"}},
                           Accepts34, "3.4.23");
  EXPECT_EQ(c.given,
            (std::map<std::string, std::string>{{"snapshot-count", "100"},
                                                {"experimental-compaction-batch-limit", "10"}}));
  EXPECT_THAT(c.dropped, ElementsAre("experimental-compaction-sleep-interval",
                                     "experimental-snapshot-catchup-entries"));
}

TEST(EtcdFlags, AllGivenWhereTheVersionHasThem) {
  auto c = ChooseEtcdFlags(
      {{"experimental-compaction-sleep-interval", "1s"}},
      [](const std::string&, const std::string&) { return true; }, "3.5.16");
  EXPECT_EQ(c.given.size(), 1u);
  EXPECT_TRUE(c.dropped.empty());
}

TEST(EtcdFlags, ARefusedStableFlagIsAnError) {
  // A typo, or a value etcd cannot parse, must not be dropped silently.
  try {
    ChooseEtcdFlags(
        {{"snapshot-cont", "100"}, {"snapshot-count", "many"}},
        [](const std::string& n, const std::string& v) {
          return n == "snapshot-count" && v != "many";
        },
        "3.5.16");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("etcd 3.5.16 refuses --snapshot-cont=100, --snapshot-count=many"));
  }
}

class EtcdRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("fl-etcd-root-" + std::to_string(::getpid()));
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  // A fake build: a script that answers --version like etcd does.
  void Fake(const std::string& version) {
    fs::path bin = root_ / version / "usr/bin/etcd";
    fs::create_directories(bin.parent_path());
    std::ofstream(bin) << "#!/bin/sh\necho 'etcd Version: " << version << "'\n";
    fs::permissions(bin, fs::perms::owner_all);
  }
  fs::path root_;
};

TEST_F(EtcdRootTest, ListsInstalledVersionsInOrderAndFindsThem) {
  Fake("3.5.30");
  Fake("3.5.16");
  fs::create_directories(root_ / ".apt");    // apt state, not a version
  fs::create_directories(root_ / "3.5.17");  // no binary: left out
  auto all = ListInstalledEtcd(root_);
  std::vector<std::string> versions;
  for (const auto& e : all) {
    if (e.suite != "system") versions.push_back(e.version.ToString());
  }
  EXPECT_THAT(versions, ElementsAre("3.5.16", "3.5.30"));
  EXPECT_EQ(FindEtcd("3.5.30", root_).binary, (root_ / "3.5.30/usr/bin/etcd").string());
}

TEST_F(EtcdRootTest, AMissingVersionNamesWhatIsInstalledAndHowToGetIt) {
  Fake("3.5.16");
  try {
    FindEtcd("3.5.17", root_);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("etcd 3.5.17 is not installed"));
    EXPECT_THAT(e.what(), HasSubstr("3.5.16"));
    EXPECT_THAT(e.what(), HasSubstr("faultline etcd install 3.5.17"));
  }
  EXPECT_THROW(FindEtcd("latest", root_), std::invalid_argument);
}

TEST(EtcdInstall, NeitherVersionNorSuiteIsRefusedBeforeApt) {
  try {
    InstallEtcd("buster", "/nonexistent-root");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("bookworm, trixie, sid"));
  }
}

}  // namespace
}  // namespace faultline::lab
