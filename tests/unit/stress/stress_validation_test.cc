#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "faults/core/registry.h"
#include "faults/stress/size.h"
#include "faults/stress/stress_faults.h"

namespace faultline::faults::stress {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;

v1::FaultSpec Cpu(uint32_t load, uint32_t workers = 1) {
  v1::FaultSpec s;
  s.mutable_stress()->set_action(v1::StressFault::CPU);
  s.mutable_stress()->set_load(load);
  s.mutable_stress()->set_workers(workers);
  return s;
}

v1::FaultSpec Memory(uint64_t bytes) {
  v1::FaultSpec s;
  s.mutable_stress()->set_action(v1::StressFault::MEMORY);
  s.mutable_stress()->set_size_bytes(bytes);
  return s;
}

auto ErrorOn(const std::string& field, const std::string& reason) {
  return Contains(
      AllOf(Field(&FieldError::field, field), Field(&FieldError::reason, HasSubstr(reason))));
}

class StressValidation : public ::testing::Test {
 protected:
  void SetUp() override { RegisterStressFaults(registry_); }
  Registry registry_;
};

TEST_F(StressValidation, GoodSpecsPass) {
  EXPECT_TRUE(registry_.Validate(Cpu(50)).empty());
  EXPECT_TRUE(registry_.Validate(Cpu(100, 2)).empty());
  EXPECT_TRUE(registry_.Validate(Memory(256ull << 20)).empty());
  auto pct = Memory(0);
  pct.mutable_stress()->set_size_percent(10);
  EXPECT_TRUE(registry_.Validate(pct).empty());
}

TEST_F(StressValidation, LoadOutOfRangeNamesTheField) {
  EXPECT_THAT(registry_.Validate(Cpu(150)), ErrorOn("stress.load", "1..100 (got 150)"));
  EXPECT_THAT(registry_.Validate(Cpu(0)), ErrorOn("stress.load", "1..100"));
}

TEST_F(StressValidation, TooManyWorkers) {
  uint32_t limit = 4 * static_cast<uint32_t>(sysconf(_SC_NPROCESSORS_ONLN));
  EXPECT_TRUE(registry_.Validate(Cpu(10, limit)).empty());
  EXPECT_THAT(registry_.Validate(Cpu(10, limit + 1)), ErrorOn("stress.workers", "at most"));
}

TEST_F(StressValidation, SizeLargerThanRamIsRefused) {
  EXPECT_THAT(registry_.Validate(Memory(1ull << 50)),
              ErrorOn("stress.size_bytes", "larger than this host's RAM"));
  EXPECT_THAT(registry_.Validate(Memory(0)), ErrorOn("stress.size_bytes", "more than 0"));
  v1::FaultSpec none;
  none.mutable_stress()->set_action(v1::StressFault::MEMORY);
  EXPECT_THAT(registry_.Validate(none), ErrorOn("stress.size", "required"));
  auto pct = Memory(0);
  pct.mutable_stress()->set_size_percent(150);
  EXPECT_THAT(registry_.Validate(pct), ErrorOn("stress.size_percent", "(0, 100]"));
}

TEST_F(StressValidation, EveryErrorAtOnceAndNothingCreated) {
  auto s = Cpu(150, 100000);
  s.mutable_stress()->add_cpus(100000);
  s.mutable_stress()->set_oom_score_adj(5000);
  auto errors = registry_.Validate(s);
  EXPECT_THAT(errors, ErrorOn("stress.load", ""));
  EXPECT_THAT(errors, ErrorOn("stress.workers", ""));
  EXPECT_THAT(errors, ErrorOn("stress.cpus[0]", "no CPU 100000"));
  EXPECT_THAT(errors, ErrorOn("stress.oom_score_adj", ""));
  FaultContext ctx;
  EXPECT_THROW(registry_.Create(s, ctx), ValidationError);
}

TEST_F(StressValidation, ActionRequiredAndFieldsBelongToTheirAction) {
  v1::FaultSpec s;
  s.mutable_stress();
  EXPECT_THAT(registry_.Validate(s), ErrorOn("stress.action", "cpu or memory"));
  auto m = Memory(1 << 20);
  m.mutable_stress()->set_load(50);
  EXPECT_THAT(registry_.Validate(m), ErrorOn("stress.load", "only for cpu"));
}

TEST(ParseSize, Units) {
  EXPECT_EQ(ParseSize("512MiB")->bytes, 512ull << 20);
  EXPECT_EQ(ParseSize("512M")->bytes, 512ull << 20);
  EXPECT_EQ(ParseSize("1.5GiB")->bytes, 3ull << 29);
  EXPECT_EQ(ParseSize("100MB")->bytes, 100'000'000ull);
  EXPECT_EQ(ParseSize("4096")->bytes, 4096ull);
  EXPECT_EQ(ParseSize("2Gi")->bytes, 2ull << 30);
  EXPECT_DOUBLE_EQ(ParseSize("25%")->percent, 25.0);
}

TEST(ParseSize, BadInputSaysWhy) {
  std::string why;
  EXPECT_FALSE(ParseSize("12parsecs", &why));
  EXPECT_THAT(why, HasSubstr("unknown unit \"parsecs\""));
  EXPECT_FALSE(ParseSize("lots", &why));
  EXPECT_THAT(why, HasSubstr("does not start with a number"));
  EXPECT_FALSE(ParseSize("150%", &why));
  EXPECT_THAT(why, HasSubstr("(0, 100]"));
  EXPECT_FALSE(ParseSize("", &why));
  EXPECT_FALSE(ParseSize("-5MiB", &why));
}

TEST(FormatBytes, Readable) {
  EXPECT_EQ(FormatBytes(256ull << 20), "256MiB");
  EXPECT_EQ(FormatBytes(3ull << 29), "1.50GiB");
  EXPECT_EQ(FormatBytes(12), "12B");
}

}  // namespace
}  // namespace faultline::faults::stress
