#include "faults/core/registry.h"

#include <gtest/gtest.h>

#include "faults/core/duration.h"
#include "faults/process/process_faults.h"

namespace faultline::faults {
namespace {

using namespace std::chrono_literals;

TEST(RegistryTest, ListsAndFindsFamilies) {
  Registry r;
  process::RegisterProcessFaults(r);
  EXPECT_NE(r.Find("process"), nullptr);
  EXPECT_EQ(r.Find("io"), nullptr);
  EXPECT_EQ(r.Families(), std::vector<std::string>{"process"});
  EXPECT_THROW(process::RegisterProcessFaults(r), std::logic_error);
}

TEST(RegistryTest, SpecWithoutFaultKindIsRefused) {
  Registry r;
  process::RegisterProcessFaults(r);
  auto errors = r.Validate(v1::FaultSpec{});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "fault");
}

TEST(RegistryTest, FamilyNotServedIsNamed) {
  Registry r;
  process::RegisterProcessFaults(r);
  v1::FaultSpec spec;
  spec.mutable_net()->set_action(v1::NetFault::DELAY);
  auto errors = r.Validate(spec);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "net");
  EXPECT_NE(errors[0].reason.find("not supported"), std::string::npos);
}

TEST(RegistryTest, NegativeDurationAndFamilyErrorsComeTogether) {
  Registry r;
  process::RegisterProcessFaults(r);
  v1::FaultSpec spec;
  spec.mutable_process()->set_action(v1::ProcessFault::PAUSE);
  ToProto(-3s, spec.mutable_duration());
  auto errors = r.Validate(spec);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].field, "duration");
  EXPECT_EQ(errors[1].field, "process.target");
  try {
    r.Create(spec, FaultContext{});
    FAIL();
  } catch (const ValidationError& e) {
    EXPECT_EQ(std::string(e.what()),
              "duration: must not be negative; process.target: required: one of pid, name, "
              "cmdline, cgroup, systemd_unit, managed");
  }
}

}  // namespace
}  // namespace faultline::faults
