// The agent's FaultManager with real faults on real processes: a managed-process restart that
// waits 10 s for readiness inside Apply must not hold back another fault's end, a renewal or a
// recover. Effects are read from /proc, not from the manager's answers.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "agent/fault_manager.h"
#include "faults/core/duration.h"
#include "faults/process/managed.h"
#include "faults/process/proc.h"
#include "faults/process/process_faults.h"
#include "tests/support/subprocess.h"

namespace faultline::agent {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using faults::process::ManagedSet;
using faults::process::ManagedSpec;
using faults::process::ReadinessProbe;

// The state letter of /proc/PID/stat ('?' once the process is gone).
char ProcState(pid_t pid) {
  auto info = faults::process::ReadProc(pid);
  return info ? info->state : '?';
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

class ManagerConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    faults::process::RegisterProcessFaults(registry_);
    // Ready 10 s after each start: the shell sleeps, then marks itself ready. The probe looks
    // for the mark of this very start (its pid), so the previous start's mark does not count.
    ManagedSpec slow;
    slow.name = "slow";
    slow.argv = {
        "/bin/sh", "-c",
        "sleep 10 && echo $$ > " + (dir_.path() / "ready").string() + " && exec sleep 600"};
    slow.cwd = dir_.path().string();
    slow.log = (dir_.path() / "slow.log").string();
    slow.ready.kind = ReadinessProbe::Kind::kCommand;
    slow.ready.command = {"/bin/sh", "-c",
                          "test -s " + (dir_.path() / "ready").string() + " && kill -0 $(cat " +
                              (dir_.path() / "ready").string() + ")"};
    slow.ready.interval = 50ms;
    slow.ready.timeout = 60s;
    set_ = std::make_unique<ManagedSet>(std::vector<ManagedSpec>{slow}, dir_.path() / "managed");
    set_->StartAll();
    ctx_.agent_pid = getpid();
    ctx_.supervisor = set_.get();
    ctx_.state_dir = dir_.path();
  }
  void TearDown() override {
    if (set_) set_->Get("slow").Stop(SIGKILL, 2s);
  }

  v1::InjectRequest Restart() const {
    v1::InjectRequest req;
    auto* p = req.mutable_spec()->mutable_process();
    p->set_action(v1::ProcessFault::RESTART);
    p->set_signal(SIGKILL);
    p->mutable_target()->set_managed("slow");
    req.set_experiment_id("exp");
    return req;
  }
  v1::InjectRequest Pause(pid_t pid, std::chrono::nanoseconds duration) const {
    v1::InjectRequest req;
    auto* p = req.mutable_spec()->mutable_process();
    p->set_action(v1::ProcessFault::PAUSE);
    p->mutable_target()->set_pid(pid);
    faults::ToProto(duration, req.mutable_spec()->mutable_duration());
    req.set_experiment_id("exp");
    return req;
  }

  testing::TempDir dir_{"faultline-mgr"};
  faults::Registry registry_;
  faults::FaultContext ctx_;
  std::unique_ptr<ManagedSet> set_;
};

TEST_F(ManagerConcurrencyTest, SlowRestartHoldsBackNoOtherFaultRenewalOrRecover) {
  faults::Journal journal(dir_.path());
  FaultManager m(registry_, ctx_, journal, {});
  pid_t before = set_->Pid("slow");
  ASSERT_GT(before, 0);

  auto restart_start = Clock::now();
  auto restart = std::async(std::launch::async, [&] { return m.Inject(Restart()); });
  // The restart is under way once the old process is gone and a new one runs (from /proc).
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto old = faults::process::ReadProc(before);
        pid_t now = set_->Pid("slow");
        return (!old || old->state == 'Z') && now > 0 && now != before;
      },
      5s));

  // A 300 ms pause on another process while the restart waits for readiness.
  testing::Subprocess c({"sleep", "60"});
  ASSERT_TRUE(testing::WaitFor([&] { return ProcState(c.pid()) == 'S'; }, 2s));
  auto call = Clock::now();
  v1::FaultStatus pause = m.Inject(Pause(c.pid(), 300ms));
  auto returned = Clock::now();
  EXPECT_EQ(ProcState(c.pid()), 'T');

  // A renewal of the experiment (the pause and the restart still applying) answers at once,
  // well within the 2 s deadline the runner gives it.
  v1::RenewRequest renew;
  renew.set_experiment_id("exp");
  faults::ToProto(15s, renew.mutable_lease());
  auto renew_call = Clock::now();
  auto renewed = m.Renew(renew);
  auto renew_took = Clock::now() - renew_call;

  // When does the paused process run again? Polled from /proc.
  Clock::time_point resumed;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        resumed = Clock::now();
        return ProcState(c.pid()) != 'T';
      },
      5s));
  ASSERT_EQ(restart.wait_for(0s), std::future_status::timeout)
      << "the restart should still be waiting for readiness";
  std::printf(
      "pause inject %.1fms, renew %.1fms, pause ended %.1fms after the inject returned "
      "(duration 300ms)\n",
      Ms(returned - call), Ms(renew_took), Ms(resumed - returned));
  EXPECT_LT(renew_took, 2s);
  EXPECT_EQ(renewed.size(), 2u);
  // Its 300 ms run from Apply, which happened between `call` and `returned`.
  EXPECT_GE(resumed - call, 300ms);
  EXPECT_LE(resumed - returned, 400ms) << "the pause ended late: held back by the restart";

  // A recover of the experiment while the restart still applies waits for it, and reports the
  // restart as completed (a restart is one-shot: nothing is left to revert).
  auto recovered = m.Recover([] {
    v1::RecoverRequest r;
    r.set_experiment_id("exp");
    return r;
  }());
  // Recover is woken by the Inject thread's final notify, which comes just before Inject
  // returns and releases the lock; the future becomes ready only after that return, a moment
  // later. What shows the wait is that the recover's answer names the restart as completed.
  EXPECT_EQ(restart.wait_for(2s), std::future_status::ready);
  v1::FaultStatus done = restart.get();
  auto restart_took = Clock::now() - restart_start;
  EXPECT_EQ(done.state(), v1::FaultStatus::COMPLETED);
  EXPECT_GE(restart_took, 9s) << "the readiness wait was not held";
  ASSERT_EQ(recovered.size(), 1u);
  EXPECT_EQ(recovered[0].id(), done.id());
  EXPECT_EQ(recovered[0].state(), v1::FaultStatus::COMPLETED);
  EXPECT_NE(pause.id(), done.id());
  EXPECT_EQ(m.active(), 0u);

  // The restarted process is the one that became ready (its mark, a live pid).
  pid_t after = set_->Pid("slow");
  auto info = faults::process::ReadProc(after);
  ASSERT_TRUE(info.has_value());
  EXPECT_NE(info->state, 'Z');
  EXPECT_NE(after, before);
}

}  // namespace
}  // namespace faultline::agent
