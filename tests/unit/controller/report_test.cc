#include "controller/runner/report.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>

namespace faultline::controller {
namespace {

RunResult Sample() {
  RunResult r;
  r.run_id = "exp-1";
  r.experiment = "leader <pause> & co";
  r.source = "x.yaml:1";
  r.seed = 42;
  r.state = "failed";
  r.duration_s = 12.5;
  r.members = {"e1", "e2", "e3"};
  r.events.push_back({2.0, "fault.applied", "s0", "unix:///a1", "e1", "f-1", "SIGSTOP"});
  r.windows.push_back({"s0", "unix:///a1", "e1", "f-1", "process/pause", 2.0, 6.0});
  for (int s = 0; s < 12; ++s) r.latency.push_back({s, 50, s == 3 ? 2 : 0, 2.0, 9.0 + s});
  r.leaders.push_back({0.0, {{"e1", "e1"}, {"e2", "e1"}, {"e3", "e1"}}});
  r.leaders.push_back({3.0, {{"e1", "?"}, {"e2", ""}, {"e3", "e2"}}});
  r.checks.push_back({"HEALTH", false, true, "ok", {{"leader", "e2"}}});
  r.checks.push_back(
      {"HASHKV", false, false, "hash differs at revision 9", {{"hash", {{"e1", 1}, {"e2", 2}}}}});
  r.checks.push_back({"p99_latency", true, false, "p99 900ms > 500ms", {{"p99_ms", 900}}});
  return r;
}

TEST(Report, JsonRoundTrips) {
  auto r = Sample();
  auto back = RunResultFromJson(ToJson(r));
  EXPECT_EQ(ToJson(back), ToJson(r));
  EXPECT_EQ(back.failing().size(), 2u);
}

TEST(Report, JUnitHasOneTestcasePerCheckAndSloWithEvidence) {
  std::string xml = RenderJUnit({Sample()});
  auto count = [&](const std::string& re) {
    std::regex rx(re);
    return std::distance(std::sregex_iterator(xml.begin(), xml.end(), rx), std::sregex_iterator());
  };
  EXPECT_EQ(count("<testcase "), 3);
  EXPECT_EQ(count("<failure "), 2);
  EXPECT_NE(xml.find("<testsuites name=\"faultline\" tests=\"3\" failures=\"2\" errors=\"0\">"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("classname=\"leader &lt;pause&gt; &amp; co.slo\" name=\"p99_latency\""),
            std::string::npos);
  EXPECT_NE(xml.find("<failure message=\"hash differs at revision 9\" type=\"check\">"),
            std::string::npos);
  EXPECT_NE(xml.find("&quot;e2&quot;: 2"), std::string::npos) << "evidence is the failure text";
  EXPECT_EQ(xml.find("leader <pause>"), std::string::npos) << "names are escaped";
}

TEST(Report, JUnitNeverShowsAnErroredRunAsEmptyGreen) {
  RunResult r;
  r.experiment = "x";
  r.state = "error";
  r.error = "agent unreachable";
  std::string xml = RenderJUnit({r});
  EXPECT_NE(xml.find("<testcase classname=\"x\" name=\"run\">"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<error message=\"error: agent unreachable\">"), std::string::npos);
}

TEST(Report, HtmlIsSelfContainedWithTheTimeline) {
  std::string html = RenderHtml(Sample());
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src=\""), std::string::npos) << "no external assets";
  EXPECT_EQ(html.find("href=\""), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(std::count(html.begin(), html.end(), '\n') > 10, true);
  EXPECT_NE(html.find("<polyline"), std::string::npos) << "latency lines";
  EXPECT_NE(html.find("process/pause f-1 (s0)"), std::string::npos) << "fault window";
  EXPECT_NE(html.find("e2 at 3.0s: leader none"), std::string::npos) << "leader lane";
  EXPECT_NE(html.find("leader &lt;pause&gt; &amp; co"), std::string::npos);
}

TEST(Report, WriteReportsCreatesAllThreeFiles) {
  auto dir =
      std::filesystem::temp_directory_path() / ("faultline-report-" + std::to_string(getpid()));
  WriteReports(Sample(), dir);
  for (const char* f : {"report.json", "junit.xml", "report.html"}) {
    EXPECT_TRUE(std::filesystem::exists(dir / f)) << f;
    EXPECT_FALSE(std::filesystem::exists(dir / (std::string(f) + ".tmp")));
  }
  std::ifstream in(dir / "report.json");
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["run_id"], "exp-1");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace faultline::controller
