// faultline-controller as a process: schedules, restart recovery, stop recovery, registration.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "agent/registrar.h"
#include "faultline/v1/controller.grpc.pb.h"
#include "tests/integration/controller/cluster_fixture.h"

namespace faultline::testing {
namespace {

using namespace std::chrono_literals;

class Daemon : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (agents signal etcd)";
    cluster_ = std::make_unique<EtcdCluster>();
    socket_ = (cluster_->dir() / "controller.sock").string();
    state_ = (cluster_->dir() / "controller-state").string();
  }
  void StartController(const std::string& lease = "6s") {
    controller_ = std::make_unique<Subprocess>(
        std::vector<std::string>{Binary("controller/faultline-controller"), "--listen",
                                 "unix://" + socket_, "--state-dir", state_, "--etcd-endpoints",
                                 cluster_->EndpointsCsv(), "--agents", cluster_->AgentsCsv(),
                                 "--lease", lease, "--heartbeat-interval", "1s"},
        (cluster_->dir() / "controller.log").string());
    stub_ = v1::Controller::NewStub(
        grpc::CreateChannel("unix://" + socket_, grpc::InsecureChannelCredentials()));
    ASSERT_TRUE(WaitFor(
        [&] {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + 200ms);
          v1::ListAgentsResponse r;
          return stub_->ListAgents(&ctx, {}, &r).ok();
        },
        10s))
        << Log();
  }
  std::string Log() {
    std::ifstream in(cluster_->dir() / "controller.log");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  grpc::Status Submit(const std::string& yaml, bool run_now, v1::SubmitExperimentResponse* resp) {
    v1::SubmitExperimentRequest req;
    req.set_yaml(yaml);
    req.set_file_name("test.yaml");
    req.set_run_now(run_now);
    grpc::ClientContext ctx;
    return stub_->SubmitExperiment(&ctx, req, resp);
  }
  std::vector<v1::Run> Runs() {
    grpc::ClientContext ctx;
    v1::ListRunsResponse r;
    stub_->ListRuns(&ctx, {}, &r);
    return {r.runs().begin(), r.runs().end()};
  }
  v1::Run GetRun(const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetRunRequest req;
    req.set_id(id);
    v1::Run r;
    stub_->GetRun(&ctx, req, &r);
    return r;
  }
  int StoppedMember() {
    for (int i = 0; i < cluster_->size(); ++i) {
      if (cluster_->EtcdState(i) == 'T') return i;
    }
    return -1;
  }
  static std::string Pause(const std::string& name, const std::string& duration,
                           const std::string& extra = "") {
    return "apiVersion: faultline/v1\nkind: Experiment\nmetadata:\n  name: " + name +
           "\nspec:\n  seed: 3\n  workload: {kind: none}\n  steps:\n    - name: pause\n"
           "      fault:\n        process:\n          action: pause\n"
           "          target: {cmdline: \"--name ${label:member} \"}\n"
           "      target: {role: followers, mode: one}\n      duration: " +
           duration + "\n  checks: [health]\n" + extra;
  }
  std::unique_ptr<EtcdCluster> cluster_;
  std::unique_ptr<Subprocess> controller_;
  std::unique_ptr<v1::Controller::Stub> stub_;
  std::string socket_, state_;
};

TEST_F(Daemon, EveryScheduleRunsRepeatedlyAndForbidSkipsTheOverlap) {
  StartController();
  // Every 4s, each run holding a 6s fault: the second due time finds the first run active.
  v1::SubmitExperimentResponse resp;
  auto st =
      Submit(Pause("sched", "6s", "  schedule: {cron: '@every 4s', concurrencyPolicy: Forbid}\n"),
             false, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(WaitFor([&] { return Runs().size() >= 2; }, 30s)) << Log();
  auto schedules = [&] {
    grpc::ClientContext ctx;
    v1::ListSchedulesResponse r;
    stub_->ListSchedules(&ctx, {}, &r);
    return r;
  };
  auto s = schedules();
  ASSERT_EQ(s.schedules_size(), 1);
  EXPECT_GE(s.schedules(0).skipped(), 1u) << "Forbid skipped the overlapping due time\n" << Log();
  // Never two runs at once under Forbid.
  int running = 0;
  for (const auto& r : Runs()) running += r.state() == v1::Run::RUNNING;
  EXPECT_LE(running, 1);
  // Pause: no new run starts.
  {
    grpc::ClientContext ctx;
    v1::ScheduleRef ref;
    ref.set_experiment_name("sched");
    v1::ScheduleState out;
    ASSERT_TRUE(stub_->PauseSchedule(&ctx, ref, &out).ok());
    EXPECT_TRUE(out.paused());
  }
  size_t before = Runs().size();
  std::this_thread::sleep_for(9s);
  EXPECT_EQ(Runs().size(), before) << "a paused schedule started a run";
  EXPECT_TRUE(WaitFor([&] { return StoppedMember() == -1; }, 10s));
}

TEST_F(Daemon, RestartMarksTheInterruptedRunAndRecoversItsFault) {
  // A long lease, so what ends the fault is the restarted controller, not the lease.
  StartController("60s");
  v1::SubmitExperimentResponse resp;
  ASSERT_TRUE(Submit(Pause("long", "120s"), true, &resp).ok());
  ASSERT_EQ(resp.run_ids_size(), 1);
  ASSERT_TRUE(WaitFor([&] { return StoppedMember() >= 0; }, 20s)) << Log();
  int member = StoppedMember();
  controller_->Stop(SIGKILL);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(cluster_->EtcdState(member), 'T') << "the lease (60s) still holds the fault";
  auto killed = std::chrono::steady_clock::now();
  StartController("60s");
  ASSERT_TRUE(WaitFor([&] { return cluster_->EtcdState(member) != 'T'; }, 15s)) << Log();
  EXPECT_LT(std::chrono::steady_clock::now() - killed, 20s);
  EXPECT_EQ(GetRun(resp.run_ids(0)).state(), v1::Run::INTERRUPTED) << Log();
}

TEST_F(Daemon, StopRecoversTheFaultsOfActiveRuns) {
  StartController("60s");
  v1::SubmitExperimentResponse resp;
  ASSERT_TRUE(Submit(Pause("stop", "120s"), true, &resp).ok());
  ASSERT_TRUE(WaitFor([&] { return StoppedMember() >= 0; }, 20s)) << Log();
  int member = StoppedMember();
  int status = controller_->Stop(SIGTERM, 20s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << Log();
  EXPECT_NE(cluster_->EtcdState(member), 'T') << "SIGTERM left the fault behind\n" << Log();
  // The stored run says it was cancelled, after a restart too.
  StartController("60s");
  EXPECT_EQ(GetRun(resp.run_ids(0)).state(), v1::Run::CANCELLED) << Log();
}

TEST_F(Daemon, AgentsRegisterAndMalformedSubmissionsAreRefusedWithLocations) {
  StartController();
  agent::Registrar::Options o;
  o.controller = "unix://" + socket_;
  o.registration.set_address("unix:///nonexistent/agent.sock");
  (*o.registration.mutable_labels())["member"] = "x9";
  agent::Registrar reg(o);
  ASSERT_TRUE(WaitFor([&] { return reg.registered(); }, 10s));
  grpc::ClientContext ctx;
  v1::ListAgentsResponse agents;
  ASSERT_TRUE(stub_->ListAgents(&ctx, {}, &agents).ok());
  ASSERT_EQ(agents.agents_size(), 1);
  EXPECT_EQ(agents.agents(0).agent().labels().at("member"), "x9");
  EXPECT_TRUE(agents.agents(0).alive());

  v1::SubmitExperimentResponse resp;
  auto st = Submit(
      "apiVersion: faultline/v1\nkind: Experiment\nmetadata: {name: b}\nspec:\n"
      "  schedule: {cron: 'every tuesday'}\n",
      true, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("test.yaml:5:"), std::string::npos) << st.error_message();
  EXPECT_TRUE(Runs().empty());
}

}  // namespace
}  // namespace faultline::testing
