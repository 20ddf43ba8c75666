#include "experiments/requirements.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "experiments/etcd_version.h"
#include "experiments/loader.h"
#include "test_util.h"

namespace faultline::experiments {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

EtcdVersion V(const char* s) {
  auto v = ParseEtcdVersion(s);
  EXPECT_TRUE(v) << s;
  return v.value_or(EtcdVersion{});
}

TEST(EtcdVersion, ParsesUpstreamAndDebianForms) {
  EXPECT_EQ(V("3.5.16"), (EtcdVersion{3, 5, 16}));
  EXPECT_EQ(V("v3.4.23"), (EtcdVersion{3, 4, 23}));
  EXPECT_EQ(V("3.4.23-4+b4"), (EtcdVersion{3, 4, 23}));  // bookworm's package version
  EXPECT_EQ(V("3.5.30-2"), (EtcdVersion{3, 5, 30}));
  EXPECT_EQ(V("3.5.30-2").ToString(), "3.5.30");
  for (const char* bad :
       {"", "3", "3.5", "3.5.", "x.5.1", "3.5.1x", "bookworm", "3..1", "-3.5.1"}) {
    EXPECT_FALSE(ParseEtcdVersion(bad)) << bad;
  }
}

TEST(EtcdVersion, OrdersNumericallyNotAsText) {
  EXPECT_LT(V("3.5.9"), V("3.5.16"));
  EXPECT_LT(V("3.4.99"), V("3.5.0"));
  EXPECT_GT(V("3.10.0"), V("3.9.9"));
}

TEST(EtcdVersion, ReadsEtcdVersionOutput) {
  auto v = ParseEtcdVersionOutput(
      "etcd Version: 3.5.16\nGit SHA: Not provided (use ./build instead of go build)\nGo "
      "Version: go1.24.0\n");
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, (EtcdVersion{3, 5, 16}));
  EXPECT_FALSE(ParseEtcdVersionOutput("Usage: etcd [flags]\n"));
}

TEST(VersionRange, ComparisonsAllHold) {
  auto r = VersionRange::Parse(">=3.5.0 <3.5.18");
  EXPECT_FALSE(r.Contains(V("3.4.23")));
  EXPECT_TRUE(r.Contains(V("3.5.0")));
  EXPECT_TRUE(r.Contains(V("3.5.16")));
  EXPECT_FALSE(r.Contains(V("3.5.18")));
  EXPECT_FALSE(r.Contains(V("3.5.30")));
  EXPECT_TRUE(VersionRange::Parse("<=3.5.18,>3.5.17").Contains(V("3.5.18")));
}

TEST(VersionRange, ExactAndMinorForms) {
  EXPECT_TRUE(VersionRange::Parse("3.4.23").Contains(V("3.4.23")));
  EXPECT_FALSE(VersionRange::Parse("=3.4.23").Contains(V("3.4.24")));
  auto minor = VersionRange::Parse("3.5");
  EXPECT_TRUE(minor.Contains(V("3.5.0")));
  EXPECT_TRUE(minor.Contains(V("3.5.30")));
  EXPECT_FALSE(minor.Contains(V("3.4.23")));
  EXPECT_FALSE(minor.Contains(V("3.6.0")));
}

TEST(VersionRange, AlternativesPerReleaseLine) {
  // etcd#15271 was fixed in 3.4.25 and 3.5.8.
  auto affected = VersionRange::Parse("<3.4.25 || >=3.5.0 <3.5.8");
  auto fixed = VersionRange::Parse(">=3.4.25 <3.5.0 || >=3.5.8");
  for (const char* v : {"3.4.23", "3.4.24", "3.5.0", "3.5.7"}) {
    EXPECT_TRUE(affected.Contains(V(v))) << v;
    EXPECT_FALSE(fixed.Contains(V(v))) << v;
  }
  for (const char* v : {"3.4.25", "3.4.38", "3.5.8", "3.5.16", "3.5.30", "3.6.0"}) {
    EXPECT_FALSE(affected.Contains(V(v))) << v;
    EXPECT_TRUE(fixed.Contains(V(v))) << v;
  }
}

TEST(VersionRange, EmptyHoldsEverythingAndBadTextIsNamed) {
  EXPECT_TRUE(VersionRange::Parse("").Contains(V("3.4.23")));
  EXPECT_TRUE(VersionRange::Parse("").empty());
  EXPECT_THAT(VersionRangeError("<3.5.x"), HasSubstr("\"<3.5.x\" is not a version comparison"));
  EXPECT_THAT(VersionRangeError(">=3.5"), HasSubstr("\">=3.5\""));
  EXPECT_THAT(VersionRangeError("<3.4.25 ||"), HasSubstr("empty"));
  EXPECT_THAT(VersionRangeError("|| 3.5"), HasSubstr("empty"));
  EXPECT_EQ(VersionRangeError("<3.4.25 || 3.5"), "");
}

v1::ClusterRequirements Want(const std::string& version, std::map<std::string, std::string> flags,
                             uint32_t members = 0) {
  v1::ClusterRequirements c;
  c.set_etcd_version(version);
  c.mutable_etcd_flags()->insert(flags.begin(), flags.end());
  c.set_members(members);
  return c;
}

TEST(ClusterRequirements, AMatchingLabHasNoMismatch) {
  ClusterFacts lab{"3.5.16", {{"snapshot-count", "100"}, {"log-level", "warn"}}, {}, 3};
  EXPECT_THAT(ClusterMismatches(Want(">=3.5.0", {{"snapshot-count", "100"}}, 3), lab), IsEmpty());
  // Flags the experiment does not ask about do not matter.
  EXPECT_THAT(ClusterMismatches(Want("", {}), lab), IsEmpty());
}

TEST(ClusterRequirements, NamesEveryMismatch) {
  ClusterFacts lab{"3.4.23", {{"snapshot-count", "10000"}}, {}, 5};
  auto m = ClusterMismatches(
      Want(">=3.5.0", {{"snapshot-count", "100"}, {"experimental-compaction-batch-limit", "10"}},
           3),
      lab);
  EXPECT_THAT(m, ElementsAre("etcd 3.4.23, the experiment wants >=3.5.0",
                             "5 members, the experiment wants 3",
                             "--experimental-compaction-batch-limit not given (etcd's default), "
                             "the experiment wants 10",
                             "--snapshot-count=10000, the experiment wants 100"));
}

TEST(ClusterRequirements, AFlagTheVersionLacksMatches) {
  // 3.4 has no --experimental-compaction-sleep-interval: the lab left it out, and no 3.4 lab can
  // do better, so the experiment runs there without it.
  ClusterFacts lab{"3.4.23",
                   {{"experimental-compaction-batch-limit", "10"}},
                   {"experimental-compaction-sleep-interval"},
                   3};
  EXPECT_THAT(ClusterMismatches(Want("", {{"experimental-compaction-batch-limit", "10"},
                                          {"experimental-compaction-sleep-interval", "1s"}}),
                                lab),
              IsEmpty());
}

TEST(ClusterRequirements, LabUpCommandBuildsTheLab) {
  EXPECT_EQ(
      LabUpCommand(
          Want("", {{"snapshot-count", "100"}, {"experimental-compaction-batch-limit", "10"}}, 5),
          "3.5.16", "bugs"),
      "faultline lab up --name bugs --members 5 --etcd-version 3.5.16 --etcd-flag "
      "experimental-compaction-batch-limit=10 --etcd-flag snapshot-count=100");
  EXPECT_EQ(LabUpCommand(Want("", {}), "", "x"), "faultline lab up --name x");
}

constexpr const char* kBugDoc = R"(apiVersion: faultline/v1
kind: Experiment
metadata:
  name: etcd-00001
  bug:
    issue: https://github.com/etcd-io/etcd/issues/1
    symptom: members diverge
    affected: "<3.4.25 || >=3.5.0 <3.5.8"
    fixed: ">=3.4.25 <3.5.0 || >=3.5.8"
    seenBy: [revision, hashkv]
    runs: 3
spec:
  cluster:
    etcdVersion: ">=3.4.0"
    members: 3
    etcdFlags: {snapshot-count: "100"}
  steps:
    - wait: 1s
)";

TEST(BugExperiments, MetadataBugAndClusterLoad) {
  auto r = LoadString(kBugDoc, "bug.yaml");
  ASSERT_TRUE(r.ok()) << testing::All(r);
  const auto& e = r.experiments.at(0);
  EXPECT_EQ(e.bug().issue(), "https://github.com/etcd-io/etcd/issues/1");
  EXPECT_EQ(e.bug().runs(), 3u);
  EXPECT_THAT(std::vector<std::string>(e.bug().seen_by().begin(), e.bug().seen_by().end()),
              ElementsAre("revision", "hashkv"));
  EXPECT_EQ(e.cluster().etcd_flags().at("snapshot-count"), "100");
  EXPECT_EQ(e.cluster().members(), 3u);
}

TEST(BugExperiments, BadRangesFlagsAndMembersAreErrors) {
  std::string doc = kBugDoc;
  auto replace = [&](const std::string& from, const std::string& to) {
    doc.replace(doc.find(from), from.size(), to);
  };
  replace("affected: \"<3.4.25 || >=3.5.0 <3.5.8\"", "affected: \"<3.4.x\"");
  replace("etcdVersion: \">=3.4.0\"", "etcdVersion: \"newest\"");
  replace("members: 3", "members: 4");
  replace("{snapshot-count: \"100\"}", "{--snapshot-count: \"100\"}");
  replace("    seenBy: [revision, hashkv]\n", "");
  auto r = LoadString(doc, "bug.yaml");
  ASSERT_FALSE(r.ok());
  std::string all = testing::All(r);
  EXPECT_THAT(all, HasSubstr("metadata.bug.affected: \"<3.4.x\" is not a version comparison"));
  EXPECT_THAT(all, HasSubstr("spec.cluster.etcdVersion: \"newest\""));
  EXPECT_THAT(all, HasSubstr("spec.cluster.members: want 3 or 5"));
  EXPECT_THAT(all, HasSubstr("flag \"--snapshot-count\": write the name without leading dashes"));
  EXPECT_THAT(all, HasSubstr("metadata.bug.seenBy: required"));
}

TEST(BugExperiments, BugIsWrittenInMetadataNotSpec) {
  std::string doc = kBugDoc;
  doc += "  bug: {issue: x}\n";
  auto r = LoadString(doc, "bug.yaml");
  EXPECT_THAT(testing::All(r), HasSubstr("spec.bug: not allowed here: set by metadata.bug"));
}

// Every row of the track record (and every pending one) loads, names its issue and symptom, and
// says which versions it affects; its file is named after the issue.
TEST(BugExperiments, EveryTrackRecordRowLoads) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(FAULTLINE_SOURCE_DIR) / "experiments" / "bugs";
  int rows = 0;
  for (const auto& f : fs::recursive_directory_iterator(dir)) {
    if (f.path().extension() != ".yaml") continue;
    SCOPED_TRACE(f.path().string());
    auto r = LoadFile(f.path().string());
    ASSERT_TRUE(r.ok()) << testing::All(r);
    ASSERT_EQ(r.experiments.size(), 1u);
    const auto& e = r.experiments[0];
    EXPECT_EQ(e.name() + ".yaml", f.path().filename().string());
    ASSERT_TRUE(e.has_bug());
    std::string number = e.name().substr(e.name().find('-') + 1);
    while (number.starts_with("0")) number.erase(0, 1);
    EXPECT_THAT(e.bug().issue(), HasSubstr("/issues/" + number));
    EXPECT_GT(e.bug().runs(), 0u) << "the bugs tier needs a run budget";
    ++rows;
  }
  EXPECT_GE(rows, 5);
}

}  // namespace
}  // namespace faultline::experiments
