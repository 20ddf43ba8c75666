#include "faults/core/duration.h"

#include <gtest/gtest.h>

namespace faultline::faults {
namespace {

using namespace std::chrono_literals;

TEST(DurationTest, ParsesGoStyleDurations) {
  EXPECT_EQ(*ParseDuration("100ms"), 100ms);
  EXPECT_EQ(*ParseDuration("1m30s"), 90s);
  EXPECT_EQ(*ParseDuration("1.5s"), 1500ms);
  EXPECT_EQ(*ParseDuration("2h"), 2h);
  EXPECT_EQ(*ParseDuration("10us"), 10us);
  EXPECT_EQ(*ParseDuration("0"), 0ns);
  EXPECT_EQ(*ParseDuration("-3s"), -3s);
}

TEST(DurationTest, RejectsWithReason) {
  std::string why;
  EXPECT_FALSE(ParseDuration("30", &why));
  EXPECT_NE(why.find("unit"), std::string::npos);
  EXPECT_FALSE(ParseDuration("", &why));
  EXPECT_FALSE(ParseDuration("abc", &why));
  EXPECT_FALSE(ParseDuration("5x", &why));
}

TEST(DurationTest, FormatsReadably) {
  EXPECT_EQ(FormatDuration(90s), "1m30s");
  EXPECT_EQ(FormatDuration(250ms), "250ms");
  EXPECT_EQ(FormatDuration(0s), "0s");
  EXPECT_EQ(FormatDuration(1500ms), "1.5s");
}

}  // namespace
}  // namespace faultline::faults
