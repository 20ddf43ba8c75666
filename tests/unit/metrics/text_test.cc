#include "faults/metrics/text.h"

#include <gtest/gtest.h>

namespace faultline::metrics {
namespace {

TEST(TextWriter, FamiliesAnnounceThemselvesOnceAndLabelValuesAreEscaped) {
  TextWriter o;
  o.Counter("x_total", "Things.", 3);
  o.Family("y", "Per kind.", TextWriter::Type::kGauge);
  o.Sample("y", {{"kind", "a\"b"}, {"path", "c:\\d\ne"}}, int64_t{1234567890123});
  o.Sample("y", {{"kind", "plain"}}, 0.25);
  EXPECT_EQ(o.str(),
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total 3\n"
            "# HELP y Per kind.\n# TYPE y gauge\n"
            "y{kind=\"a\\\"b\",path=\"c:\\\\d\\ne\"} 1234567890123\n"
            "y{kind=\"plain\"} 0.25\n");
}

TEST(TextWriter, LargeDoublesKeepEveryDigit) {
  TextWriter o;
  o.Sample("t", {}, 1700000000.5);
  EXPECT_EQ(o.str(), "t 1700000000.5\n");
}

}  // namespace
}  // namespace faultline::metrics
