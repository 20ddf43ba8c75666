#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "controller/schedule/cron.h"
#include "experiments/loader.h"
#include "test_util.h"

namespace faultline::experiments {
namespace {

namespace fs = std::filesystem;
using testing::All;

LoadOptions WithCron() {
  LoadOptions o;
  o.validate_cron = [](const std::string& c) {
    std::string why;
    return controller::CronSchedule::Parse(c, &why) ? std::string() : why;
  };
  return o;
}

std::vector<fs::path> Files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// An error that only says a family's proto is still the skeleton (no such field yet).
bool OnlyAwaitsAStubFamily(const Diagnostic& d) {
  static const std::regex kFamilyField(R"(\.fault\.(io|net|stress)\.)");
  std::smatch m;
  if (!std::regex_search(d.path, m, kFamilyField)) return false;
  const auto* desc = m[1] == "io"    ? v1::IoFault::descriptor()
                     : m[1] == "net" ? v1::NetFault::descriptor()
                                     : v1::StressFault::descriptor();
  return testing::IsStub(desc) && d.message.find("unknown field") == 0;
}

TEST(Catalog, EveryExperimentLoadsWithWorkloadChecksAndSlos) {
  const auto files = Files(fs::path(FAULTLINE_SOURCE_DIR) / "experiments" / "catalog");
  ASSERT_GE(files.size(), 8u);
  std::set<std::string> names;
  std::vector<std::string> pending;
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    auto r = LoadFile(f.string(), WithCron());
    if (!r.ok()) {
      bool all_stub = std::all_of(r.errors.begin(), r.errors.end(), OnlyAwaitsAStubFamily);
      ASSERT_TRUE(all_stub) << All(r);
      pending.push_back(All(r));
      continue;
    }
    ASSERT_EQ(r.experiments.size(), 1u);
    const auto& e = r.experiments[0];
    EXPECT_EQ(e.name() + ".yaml", f.filename().string()) << "file named after the experiment";
    EXPECT_TRUE(names.insert(e.name()).second);
    EXPECT_FALSE(e.description().empty());
    EXPECT_NE(e.workload().kind(), v1::Workload::NONE);
    EXPECT_GT(e.workload().clients(), 0u);
    EXPECT_GE(e.checks_size(), 5);
    EXPECT_TRUE(e.slo().has_time_to_healthy()) << "every catalog run must prove recovery";
  }
  if (!pending.empty()) {
    std::string all;
    for (const auto& p : pending) all += p + "\n";
    GTEST_SKIP() << pending.size() << " catalog experiments use a family whose proto is still "
                 << "the skeleton:\n"
                 << all;
  }
}

TEST(Catalog, ChaosMeshExamplesLoadOrAwaitTheirFamily) {
  for (const auto& f : Files(fs::path(FAULTLINE_SOURCE_DIR) / "experiments" / "examples")) {
    SCOPED_TRACE(f.string());
    auto r = LoadFile(f.string(), WithCron());
    for (const auto& d : r.errors) {
      EXPECT_THAT(d.message, ::testing::HasSubstr("not supported by this build")) << d.ToString();
    }
  }
}

TEST(Catalog, TheProcessExperimentsLoadOnEveryBuild) {
  // Process faults are complete on main, so these two can never be pending.
  for (const char* name : {"leader-pause", "member-restart-loop"}) {
    auto r = LoadFile(std::string(FAULTLINE_SOURCE_DIR) + "/experiments/catalog/" + name + ".yaml",
                      WithCron());
    ASSERT_TRUE(r.ok()) << All(r);
    if (std::string(name) == "member-restart-loop") {
      const auto& e = r.experiments[0];
      EXPECT_EQ(e.steps(0).serial_size(), 5);
      EXPECT_TRUE(e.schedule().suspend());
      EXPECT_EQ(e.schedule().cron(), "0 3 * * *");
    }
  }
}

}  // namespace
}  // namespace faultline::experiments
