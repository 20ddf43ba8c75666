// The liveness rule on hand-written agent reports: exits nobody meant fail it, named with their
// member and first fatal lines; exits a fault meant are listed and pass.
#include "controller/verify/liveness.h"

#include <gtest/gtest.h>

namespace faultline::verify {
namespace {

SupervisedProcess Etcd(const std::string& member, int pid) {
  SupervisedProcess p;
  p.member = member;
  p.process = "etcd";
  p.pid = pid;
  p.log = "/lab/" + member + "/etcd.log";
  p.events.push_back({"start", 1000, pid, "agent", false, "", {}, ""});
  return p;
}

SupervisedProcess::Event Exit(int64_t at_ms, int pid, const std::string& cause, bool expected,
                              const std::string& by = "", std::vector<std::string> fatal = {}) {
  return {"exit", at_ms, pid, cause, expected, by, std::move(fatal), "...tail..."};
}

TEST(Liveness, RunningThroughoutAndKilledOnPurposeHold) {
  std::vector<SupervisedProcess> seen = {Etcd("e1", 11), Etcd("e2", 12), Etcd("e3", 13)};
  seen[1].events.push_back(
      Exit(5000, 12, "killed by signal 9 (KILL)", true, "fault process/kill (KILL)"));
  seen[1].events.push_back({"start", 6000, 22, "agent", false, "", {}, ""});
  CheckResult r = CheckLiveness(seen);
  EXPECT_TRUE(r.passed) << r.summary;
  EXPECT_NE(r.summary.find("e2 fault process/kill (KILL)"), std::string::npos) << r.summary;
  EXPECT_EQ(r.evidence["meant_exits"].size(), 1u);
}

TEST(Liveness, AnExitNobodyMeantFailsNamingTheMemberAndItsPanic) {
  std::vector<SupervisedProcess> seen = {Etcd("e1", 11), Etcd("e2", 0), Etcd("e3", 13)};
  seen[1].events.push_back(Exit(
      7250, 12, "exited with status 2", false, "",
      {R"({"level":"panic","msg":"failed to apply","error":"boom"})", "panic: failed to apply"}));
  CheckResult r = CheckLiveness(seen);
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.summary.find("etcd on e2 (pid 12) exited with status 2"), std::string::npos)
      << r.summary;
  EXPECT_NE(r.summary.find("panic: failed to apply"), std::string::npos) << r.summary;
  ASSERT_EQ(r.evidence["unexpected_exits"].size(), 1u);
  EXPECT_EQ(r.evidence["unexpected_exits"][0]["member"], "e2");
  // A kill by hand has no panic to quote; the cause says what happened.
  std::vector<SupervisedProcess> killed = {Etcd("e1", 0)};
  killed[0].events.push_back(Exit(8000, 11, "killed by signal 9 (KILL)", false));
  CheckResult k = CheckLiveness(killed);
  EXPECT_FALSE(k.passed);
  EXPECT_NE(k.summary.find("e1 (pid 11) killed by signal 9 (KILL)"), std::string::npos)
      << k.summary;
}

TEST(Liveness, OnlyTheRunsWindowAndTheNamedProcessCount) {
  std::vector<SupervisedProcess> seen = {Etcd("e1", 21)};
  seen[0].events.push_back(Exit(2000, 11, "exited with status 1", false));
  SupervisedProcess other = Etcd("e1", 0);
  other.process = "sidecar";
  other.events.push_back(Exit(9000, 31, "exited with status 1", false));
  seen.push_back(other);
  EXPECT_FALSE(CheckLiveness(seen, {0, "etcd"}).passed);
  EXPECT_TRUE(CheckLiveness(seen, {3000, "etcd"}).passed);
  EXPECT_FALSE(CheckLiveness(seen, {3000, ""}).passed);
}

TEST(Liveness, NoSupervisedProcessIsNoEvidenceAndASilentAgentFails) {
  CheckResult none = CheckLiveness({});
  EXPECT_FALSE(none.passed);
  EXPECT_TRUE(none.no_evidence);
  SupervisedProcess silent;
  silent.member = "e3";
  silent.answered = false;
  silent.error = "connection refused";
  CheckResult r = CheckLiveness({Etcd("e1", 11), silent});
  EXPECT_FALSE(r.passed);
  EXPECT_FALSE(r.no_evidence);
  EXPECT_NE(r.summary.find("e3 (connection refused)"), std::string::npos) << r.summary;
}

}  // namespace
}  // namespace faultline::verify
