#include "faults/core/log_line.h"

#include <gtest/gtest.h>

namespace faultline::faults {
namespace {

using namespace std::chrono;

TEST(LogLine, UtcMillisecondsThenProgramThenOneLine) {
  const auto at = sys_days{2026y / 12 / 3} + 13h + 5min + 1s + 7ms;
  EXPECT_EQ(FormatLogLine("faultline-agent", "listening on unix:///run/a.sock", at),
            "2026-12-03T13:05:01.007Z faultline-agent: listening on unix:///run/a.sock\n");
  // A message that already ends its line is not given a second newline.
  EXPECT_EQ(FormatLogLine("faultline-controller", "active\n", sys_days{1970y / 1 / 1}),
            "1970-01-01T00:00:00.000Z faultline-controller: active\n");
}

}  // namespace
}  // namespace faultline::faults
