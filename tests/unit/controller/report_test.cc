#include "controller/runner/report.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "controller/verify/history_checks.h"
#include "controller/verify/liveness.h"

namespace faultline::controller {
namespace {

RunResult Sample() {
  RunResult r;
  r.run_id = "exp-1";
  r.experiment = "leader <pause> & co";
  r.source = "x.yaml:1";
  r.seed = 42;
  r.state = v1::Run::FAILED;
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
  r.state = v1::Run::ERROR;
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

// A delay fault's window carries its accuracy: JSON keeps it, the timeline's tooltip and a
// "Delay accuracy" table show it, and a p99 past 2 ms is marked.
TEST(Report, DelayFaultWindowsShowTheirAccuracy) {
  RunResult r = Sample();
  FaultWindow w{"s1", "unix:///a2", "e2", "f-2", "io/latency", 3.0, 9.0};
  w.counters = {{"late_samples", 340}, {"late_p50_us", 70},     {"late_p99_us", 3400},
                {"late_max_us", 8100}, {"release_realtime", 1}, {"acted", 340}};
  w.accuracy = "delay accuracy: 340 released, late p50 0.07 ms, p99 3.40 ms, max 8.10 ms";
  r.windows.push_back(w);
  auto back = RunResultFromJson(ToJson(r));
  ASSERT_EQ(back.windows.size(), 2u);
  EXPECT_EQ(back.windows[1].counters.at("late_p99_us"), 3400);
  EXPECT_EQ(back.windows[1].accuracy, w.accuracy);
  std::string html = RenderHtml(r);
  EXPECT_NE(html.find("<h2>Delay accuracy</h2>"), std::string::npos);
  EXPECT_NE(html.find("io/latency f-2 (s1): delay accuracy: 340 released"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"fail\">3.40 ms</td>"), std::string::npos) << "p99 > 2 ms";
  EXPECT_NE(html.find("<td>real-time</td>"), std::string::npos);
  // No delay fault, no table.
  EXPECT_EQ(RenderHtml(Sample()).find("Delay accuracy"), std::string::npos);
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

namespace faultline::controller {
namespace {

// A stale read: "b" was acknowledged before the read began, which still returned "a".
verify::History StaleRead() {
  verify::History h;
  auto add = [&](int client, verify::OpType type, int64_t t0, int64_t t1) -> verify::Op& {
    verify::Op op;
    op.id = static_cast<int64_t>(h.ops.size());
    op.client = client;
    op.key = "k";
    op.type = type;
    op.invoke_ns = t0 * 1000;
    op.return_ns = t1 * 1000;
    h.ops.push_back(op);
    return h.ops.back();
  };
  verify::Op& a = add(0, verify::OpType::kPut, 0, 10);
  a.value = "a";
  a.revision = 2;
  verify::Op& b = add(1, verify::OpType::kPut, 20, 30);
  b.value = "b";
  b.revision = 3;
  verify::Op& r = add(2, verify::OpType::kGet, 40, 50);
  r.found = true;
  r.read_value = "a";
  r.read_mod_revision = 2;
  r.revision = 2;
  return h;
}

TEST(Report, HtmlShowsTheOpsOfAFailingLinearizabilityCheck) {
  RunResult r = Sample();
  verify::CheckResult lin = verify::CheckLinearizable(StaleRead());
  ASSERT_FALSE(lin.passed);
  r.checks.push_back({"LINEARIZABILITY", false, false, lin.summary, lin.evidence});
  std::string html = RenderHtml(r);
  EXPECT_NE(html.find("<h2>LINEARIZABILITY: failing ops</h2>"), std::string::npos);
  // The chart: one row per client, the stale read marked, each op with its answer.
  EXPECT_NE(html.find(">client 2</text>"), std::string::npos) << html;
  std::regex failing_bar("<rect class=\"op\" data-op=\"2\"[^>]*stroke=\"#c0392b\"");
  EXPECT_TRUE(std::regex_search(html, failing_bar)) << "the stale read is outlined in red";
  EXPECT_NE(html.find("get → a @ 2 (store 2)"), std::string::npos);
  EXPECT_NE(html.find("put b @ 3"), std::string::npos);
  // The table names it too, and the page stays self-contained.
  EXPECT_NE(html.find("<td>cannot be linearized</td><td>2</td>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("href=\""), std::string::npos);
  // Passing checks and other evidence get no such section.
  EXPECT_EQ(RenderHtml(Sample()).find("failing ops"), std::string::npos);
  RunResult ok = Sample();
  verify::History fine = StaleRead();
  fine.ops.pop_back();
  verify::CheckResult pass = verify::CheckLinearizable(fine);
  ok.checks.push_back({"LINEARIZABILITY", false, true, pass.summary, pass.evidence});
  EXPECT_EQ(RenderHtml(ok).find("failing ops"), std::string::npos);
}

TEST(Report, MalformedLinearizabilityEvidenceIsSkipped) {
  RunResult r = Sample();
  r.checks.push_back({"LINEARIZABILITY", false, false, "x", {{"failures", "not a list"}}});
  r.checks.push_back({"LINEARIZABILITY", false, false, "x", {{"failures", {{{"window", 3}}}}}});
  std::string html;
  EXPECT_NO_THROW(html = RenderHtml(r));
  EXPECT_EQ(html.find("failing ops"), std::string::npos);
}

// The liveness check's evidence as the runner records it: every exit in a table, the meant ones
// with who meant them, the others marked and quoting their panic lines (HTML-escaped).
TEST(Report, HtmlListsTheProcessExitsOfTheLivenessCheck) {
  verify::SupervisedProcess e1{"e1", "etcd", true, "", 11, 1, "/l/e1.log", {}};
  e1.events.push_back({"exit",
                       1'700'000'000'000,
                       10,
                       "killed by signal 9 (KILL)",
                       true,
                       "fault process/kill (KILL)",
                       {},
                       ""});
  verify::SupervisedProcess e2{"e2", "etcd", true, "", 0, 0, "/l/e2.log", {}};
  e2.events.push_back({"exit",
                       1'700'000'001'000,
                       20,
                       "exited with status 2",
                       false,
                       "",
                       {"panic: runtime error: <nil> map"},
                       "..."});
  verify::CheckResult lr = verify::CheckLiveness({e1, e2});
  ASSERT_FALSE(lr.passed);
  RunResult r = Sample();
  r.checks.push_back({"LIVENESS", false, lr.passed, lr.summary, lr.evidence});
  std::string html = RenderHtml(r);
  EXPECT_NE(html.find("LIVENESS: process exits"), std::string::npos);
  EXPECT_NE(html.find("meant by fault process/kill (KILL)"), std::string::npos);
  EXPECT_NE(html.find("nobody meant it"), std::string::npos);
  EXPECT_NE(html.find("panic: runtime error: &lt;nil&gt; map"), std::string::npos);
  // JSON keeps the evidence for scripts.
  auto j = ToJson(r);
  EXPECT_EQ(j["checks"].back()["evidence"]["unexpected_exits"][0]["member"], "e2");
  // A run without exits gets no table.
  EXPECT_EQ(RenderHtml(Sample()).find("process exits"), std::string::npos);
}

}  // namespace
}  // namespace faultline::controller
