#include <gtest/gtest.h>

#include <algorithm>

#include "faults/core/duration.h"
#include "faults/core/registry.h"
#include "faults/process/process_faults.h"

namespace faultline::faults {
namespace {

class ProcessValidationTest : public ::testing::Test {
 protected:
  ProcessValidationTest() { process::RegisterProcessFaults(registry_); }
  FieldErrors Check(const std::function<void(v1::ProcessFault*)>& fill) {
    v1::FaultSpec spec;
    fill(spec.mutable_process());
    return registry_.Validate(spec);
  }
  static std::vector<std::string> Fields(const FieldErrors& e) {
    std::vector<std::string> out;
    for (const auto& x : e) out.push_back(x.field);
    return out;
  }
  Registry registry_;
};

TEST_F(ProcessValidationTest, ValidPauseByPid) {
  EXPECT_TRUE(Check([](auto* p) {
                p->set_action(v1::ProcessFault::PAUSE);
                p->mutable_target()->set_pid(100);
              }).empty());
}

TEST_F(ProcessValidationTest, SignalZeroAndOutOfRangeAreNamed) {
  for (int sig : {0, 999, -1}) {
    auto e = Check([sig](auto* p) {
      p->set_action(v1::ProcessFault::SIGNAL);
      p->set_signal(sig);
      p->mutable_target()->set_pid(100);
    });
    ASSERT_EQ(Fields(e), std::vector<std::string>{"process.signal"}) << sig;
    EXPECT_NE(e[0].reason.find("between 1 and 64"), std::string::npos);
  }
}

TEST_F(ProcessValidationTest, EveryBadFieldIsReportedAtOnce) {
  auto e = Check([](auto* p) {
    p->set_action(v1::ProcessFault::ACTION_UNSPECIFIED);
    p->mutable_target()->set_cmdline("([unclosed");
    p->set_signal(70);
  });
  EXPECT_EQ(Fields(e), (std::vector<std::string>{"process.action", "process.target.cmdline",
                                                 "process.signal"}));
}

TEST_F(ProcessValidationTest, NegativePidAndLongNameAreRefused) {
  EXPECT_EQ(Fields(Check([](auto* p) {
              p->set_action(v1::ProcessFault::KILL);
              p->mutable_target()->set_pid(-5);
            })),
            std::vector<std::string>{"process.target.pid"});
  EXPECT_EQ(Fields(Check([](auto* p) {
              p->set_action(v1::ProcessFault::KILL);
              p->mutable_target()->set_name("a-name-longer-than-fifteen");
            })),
            std::vector<std::string>{"process.target.name"});
}

TEST_F(ProcessValidationTest, RestartNeedsAManagedTarget) {
  EXPECT_EQ(Fields(Check([](auto* p) {
              p->set_action(v1::ProcessFault::RESTART);
              p->mutable_target()->set_pid(10);
            })),
            std::vector<std::string>{"process.target"});
}

TEST_F(ProcessValidationTest, RejoinNeedsAManagedTargetAndNoRestartAfter) {
  auto fields = Fields(Check([](auto* p) {
    p->set_action(v1::ProcessFault::REJOIN);
    p->mutable_target()->set_name("etcd");
    faults::ToProto(std::chrono::seconds(1), p->mutable_restart_after());
    p->add_start_args("");
  }));
  std::sort(fields.begin(), fields.end());
  EXPECT_EQ(fields, (std::vector<std::string>{"process.restart_after", "process.restart_after",
                                              "process.start_args[0]", "process.target"}));
  EXPECT_TRUE(Fields(Check([](auto* p) {
                p->set_action(v1::ProcessFault::REJOIN);
                p->mutable_target()->set_managed("etcd");
                p->add_start_args("--initial-cluster-state=existing");
              })).empty());
}

TEST_F(ProcessValidationTest, OnlyRejoinTakesStartArgs) {
  EXPECT_EQ(Fields(Check([](auto* p) {
              p->set_action(v1::ProcessFault::RESTART);
              p->mutable_target()->set_managed("etcd");
              p->add_start_args("--x");
            })),
            std::vector<std::string>{"process.start_args"});
}

}  // namespace
}  // namespace faultline::faults
