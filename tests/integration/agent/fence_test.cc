// Controller fencing on a real faultline-agent: the highest election epoch per controller is
// kept across an agent restart, lower ones are refused for Inject and Renew (the refused pause
// measured from /proc: the victim keeps running), Recover is always accepted and teaches the
// agent a newer epoch, and calls without a fence are accepted as always.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "faults/core/duration.h"
#include "faults/process/proc.h"
#include "tests/support/subprocess.h"

namespace faultline::testing {
namespace {

using namespace std::chrono_literals;

char StateOf(pid_t pid) {
  auto info = faults::process::ReadProc(pid);
  return info ? info->state : '?';
}

v1::ControllerFence Fence(const std::string& controller, int64_t epoch) {
  v1::ControllerFence f;
  f.set_controller(controller);
  f.set_epoch(epoch);
  f.set_replica("replica-" + std::to_string(epoch));
  return f;
}

grpc::Status Pause(v1::Agent::Stub& stub, pid_t pid, const std::string& exp,
                   const v1::ControllerFence* fence, v1::InjectResponse* resp) {
  v1::InjectRequest req;
  auto* p = req.mutable_spec()->mutable_process();
  p->set_action(v1::ProcessFault::PAUSE);
  p->mutable_target()->set_pid(pid);
  faults::ToProto(std::chrono::minutes(10), req.mutable_spec()->mutable_duration());
  req.set_experiment_id(exp);
  if (fence) *req.mutable_fence() = *fence;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  return stub.Inject(&ctx, req, resp);
}

grpc::Status Recover(v1::Agent::Stub& stub, const std::string& exp,
                     const v1::ControllerFence* fence) {
  v1::RecoverRequest req;
  req.set_experiment_id(exp);
  if (fence) *req.mutable_fence() = *fence;
  grpc::ClientContext ctx;
  v1::RecoverResponse resp;
  return stub.Recover(&ctx, req, &resp);
}

grpc::Status Renew(v1::Agent::Stub& stub, const std::string& exp,
                   const v1::ControllerFence& fence) {
  v1::RenewRequest req;
  req.set_experiment_id(exp);
  *req.mutable_fence() = fence;
  faults::ToProto(std::chrono::seconds(30), req.mutable_lease());
  grpc::ClientContext ctx;
  v1::RenewResponse resp;
  return stub.Renew(&ctx, req, &resp);
}

TEST(AgentFence, LowerEpochIsRefusedAcrossAnAgentRestartAndRecoverAlwaysWorks) {
  if (geteuid() != 0) GTEST_SKIP() << "integration tests run as root";
  TempDir dir("faultline-agent-fence");
  Subprocess victim({"sleep", "120"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'S'; }, 2s));
  AgentProcess agent(dir.path());
  auto stub = agent.Stub();
  const std::string ctl = "etcd-00000000000000aa/fence-test";
  const auto e5 = Fence(ctl, 5), e7 = Fence(ctl, 7), e9 = Fence(ctl, 9);

  // Term 5 injects; term 7 recovers it (accepted) and by that fences term 5 off.
  v1::InjectResponse resp;
  ASSERT_TRUE(Pause(*stub, victim.pid(), "run-5", &e5, &resp).ok());
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'T'; }, 1s));
  ASSERT_TRUE(Recover(*stub, "run-5", &e7).ok());
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) != 'T'; }, 1s));

  auto st = Pause(*stub, victim.pid(), "run-5b", &e5, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("epoch 5"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("epoch 7"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("replica-5"), std::string::npos) << st.error_message();
  std::this_thread::sleep_for(200ms);
  EXPECT_NE(StateOf(victim.pid()), 'T') << "a refused inject was applied";

  // The agent restarts: the epoch was written down, term 5 is still refused.
  agent.Restart();
  stub = agent.Stub();
  st = Pause(*stub, victim.pid(), "run-5c", &e5, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(StateOf(victim.pid()), 'T');

  // Term 7 injects; term 9 takes over; term 7's renewals are refused, its recover accepted.
  ASSERT_TRUE(Pause(*stub, victim.pid(), "run-7", &e7, &resp).ok()) << agent.log();
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'T'; }, 1s));
  ASSERT_TRUE(Renew(*stub, "run-7", e7).ok());
  ASSERT_TRUE(Renew(*stub, "other", e9).ok());  // a term-9 call (renewing nothing) raises it
  st = Renew(*stub, "run-7", e7);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("renew refused"), std::string::npos) << st.error_message();
  EXPECT_EQ(StateOf(victim.pid()), 'T') << "refusing a renewal ends nothing by itself";
  ASSERT_TRUE(Recover(*stub, "run-7", &e7).ok());
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) != 'T'; }, 1s));

  // Another controller has its own epochs; an unfenced call (no HA) is accepted as always.
  const auto other = Fence("etcd-00000000000000bb/other", 1);
  ASSERT_TRUE(Pause(*stub, victim.pid(), "other-1", &other, &resp).ok());
  ASSERT_TRUE(Recover(*stub, "other-1", nullptr).ok());
  ASSERT_TRUE(Pause(*stub, victim.pid(), "plain", nullptr, &resp).ok());
  ASSERT_TRUE(Recover(*stub, "plain", nullptr).ok());
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) != 'T'; }, 1s));
}

}  // namespace
}  // namespace faultline::testing
