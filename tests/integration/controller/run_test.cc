// `faultline run` against three real etcd members and three real agents: the effect of each
// fault is read from outside (the etcd process state in /proc, etcdctl), not from the runner.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/integration/controller/cluster_fixture.h"

namespace faultline::testing {
namespace {

using namespace std::chrono_literals;

class ControllerRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (agents signal etcd)";
    cluster_ = std::make_unique<EtcdCluster>();
  }
  std::string WriteFile(const std::string& name, const std::string& text) {
    auto p = cluster_->dir() / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::vector<std::string> RunArgs(const std::string& file) {
    return {Binary("cli/faultline"), "run", file, "--agents", cluster_->AgentsCsv(), "--endpoints",
            cluster_->EndpointsCsv()};
  }
  // A pause of the leader's etcd for `duration`, the process addressed through the agent's
  // member label.
  static std::string LeaderPause(const std::string& duration) {
    return R"(apiVersion: faultline/v1
kind: Experiment
metadata:
  name: leader-pause
spec:
  seed: 11
  workload: {clients: 2, rate: 40, keys: 10, warmup: 1s, cooldown: 1s}
  steps:
    - name: pause-leader
      fault:
        process:
          action: pause
          target: {cmdline: "--name ${label:member} "}
      target: {role: leader, mode: one}
      duration: )" +
           duration + R"(
  checks: [health, convergence, revisions, key_diff, hashkv, alarms, lost_writes,
           linearizability, watch_order]
  slo: {timeToHealthy: 20s}
)";
  }
  int StoppedMember() {
    for (int i = 0; i < cluster_->size(); ++i) {
      if (cluster_->EtcdState(i) == 'T') return i;
    }
    return -1;
  }
  std::unique_ptr<EtcdCluster> cluster_;
};

TEST_F(ControllerRun, LeaderTargetedPauseLandsOnTheMemberEtcdctlCallsLeader) {
  std::string leader = cluster_->EtcdctlLeader();
  ASSERT_FALSE(leader.empty());
  auto file = WriteFile("leader.yaml", LeaderPause("3s"));
  auto reports = cluster_->dir() / "reports";
  auto args = RunArgs(file);
  args.insert(args.end(), {"--report-dir", reports.string()});
  // Watch from outside while the run goes on: which etcd process is stopped.
  std::atomic<bool> done{false};
  std::set<int> stopped;
  std::thread watcher([&] {
    while (!done) {
      int s = StoppedMember();
      if (s >= 0) stopped.insert(s);
      std::this_thread::sleep_for(20ms);
    }
  });
  std::string out;
  int code = RunCommand(args, &out);
  done = true;
  watcher.join();
  EXPECT_EQ(code, 0) << out;
  ASSERT_EQ(stopped.size(), 1u) << out;
  EXPECT_EQ(cluster_->name(*stopped.begin()), leader) << out;
  EXPECT_EQ(StoppedMember(), -1) << "the pause ended with the run";
  // The report says the same, and the timeline saw the leadership move.
  ASSERT_EQ(std::distance(std::filesystem::directory_iterator(reports), {}), 1);
  auto run_dir = std::filesystem::directory_iterator(reports)->path();
  std::ifstream in(run_dir / "report.json");
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["state"], "passed") << j.dump(2);
  // The history checks ran on the recorded workload (controller/verify's checker).
  bool linearizable = false;
  for (const auto& c : j["checks"]) {
    if (c["name"] == "LINEARIZABILITY") linearizable = c["passed"] && c["evidence"]["ops"] > 20;
  }
  EXPECT_TRUE(linearizable) << j["checks"].dump(1);
  ASSERT_EQ(j["fault_windows"].size(), 1u);
  EXPECT_EQ(j["fault_windows"][0]["member"], leader);
  double len =
      j["fault_windows"][0]["end"].get<double>() - j["fault_windows"][0]["start"].get<double>();
  EXPECT_NEAR(len, 3.0, 0.5);
  // Seconds with no answered request are absent (every client can stall behind the paused
  // leader), so check the span the samples cover, not their count.
  ASSERT_FALSE(j["latency"].empty());
  EXPECT_GE(j["latency"].back()["second"].get<int>() - j["latency"][0]["second"].get<int>(), 4)
      << j["latency"].dump();
  bool saw_change = false;
  for (const auto& s : j["leaders"]) {
    for (const auto& [m, l] : s["leader_by_member"].items()) {
      saw_change = saw_change || (l != leader && l != "" && l != "?");
    }
  }
  EXPECT_TRUE(saw_change) << "a 3s pause of the leader (1s election timeout) moves leadership";
  for (const char* f : {"report.html", "junit.xml"})
    EXPECT_TRUE(std::filesystem::exists(run_dir / f));
}

TEST_F(ControllerRun, KilledRunnerLeavesNoFaultAfterItsLease) {
  auto file = WriteFile("long.yaml", LeaderPause("120s"));
  auto args = RunArgs(file);
  args.insert(args.end(), {"--lease", "3s", "--quiet"});
  Subprocess runner(args, (cluster_->dir() / "runner.log").string());
  ASSERT_TRUE(WaitFor([&] { return StoppedMember() >= 0; }, 20s)) << "the pause never landed";
  int member = StoppedMember();
  // Renewals keep it alive well past one lease while the runner lives.
  std::this_thread::sleep_for(5s);
  EXPECT_EQ(cluster_->EtcdState(member), 'T') << "renewed leases keep the fault active\n"
                                              <<
      [&] {
        std::ifstream in(cluster_->dir() / "runner.log");
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      }();
  ASSERT_EQ(::kill(runner.pid(), SIGKILL), 0);
  auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return cluster_->EtcdState(member) != 'T'; }, 10s))
      << "the fault outlived its lease";
  auto lapsed = std::chrono::steady_clock::now() - killed;
  // At most one lease (3s) after the last renewal, which was at most a third of it before.
  EXPECT_LT(lapsed, 4s) << std::chrono::duration<double>(lapsed).count();
  // And the cluster is whole again, by etcdctl.
  EXPECT_TRUE(WaitFor([&] { return !cluster_->EtcdctlLeader().empty(); }, 10s));
}

TEST_F(ControllerRun, MalformedManifestGivesFileLineColumnErrors) {
  auto file = WriteFile("bad.yaml", R"(apiVersion: faultline/v1
kind: Experiment
metadata:
  name: bad
spec:
  steps:
    - name: s
      fault:
        process: {action: pause, target: {name: etcd}}
      target: {role: leaderr}
      duration: 3 seconds
)");
  std::string out;
  int code = RunCommand(RunArgs(file), &out);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find(file + ":10:"), std::string::npos) << out;
  EXPECT_NE(out.find(file + ":11:"), std::string::npos) << out;
  EXPECT_NE(out.find("steps[0].target.role"), std::string::npos) << out;
  EXPECT_EQ(StoppedMember(), -1) << "nothing ran";
}

TEST_F(ControllerRun, GateExitsNonZeroListingFailingChecks) {
  // A p99 SLO nobody meets while the leader is paused: the gate must fail and say why.
  std::string y = LeaderPause("2s");
  y += "  # appended\n";
  y.replace(y.find("slo: {timeToHealthy: 20s}"), 25, "slo: {p99Latency: 1us}");
  auto file = WriteFile("gate.yaml", y);
  auto junit = cluster_->dir() / "junit.xml";
  std::string out;
  int code =
      RunCommand({Binary("cli/faultline"), "gate", file, "--agents", cluster_->AgentsCsv(),
                  "--endpoints", cluster_->EndpointsCsv(), "--junit", junit.string(), "--quiet"},
                 &out);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("leader-pause: p99_latency"), std::string::npos) << out;
  std::ifstream in(junit);
  std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(xml.find("name=\"p99_latency\""), std::string::npos) << xml;
  // Failed, whichever way: too slow, or no request answered at all while the leader was paused.
  EXPECT_NE(xml.find("name=\"p99_latency\">\n      <failure message=\""), std::string::npos) << xml;
}

}  // namespace
}  // namespace faultline::testing
