#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace faultline::metrics {

// Builds a page in the Prometheus text exposition format (0.0.4): each family is announced once
// with its HELP and TYPE lines, then its samples follow.
class TextWriter {
 public:
  enum class Type { kCounter, kGauge };
  using Labels = std::vector<std::pair<std::string, std::string>>;

  // Starts a family; the samples written next belong to it.
  void Family(std::string_view name, std::string_view help, Type type);
  // One sample of the current family (label values are escaped here).
  void Sample(std::string_view name, const Labels& labels, int64_t value);
  void Sample(std::string_view name, const Labels& labels, double value);

  // A family with a single unlabelled sample.
  void Counter(std::string_view name, std::string_view help, int64_t value);
  void Gauge(std::string_view name, std::string_view help, int64_t value);

  std::string str() const { return out_.str(); }

 private:
  void Series(std::string_view name, const Labels& labels);
  std::ostringstream out_;
};

// A label value as the text format wants it: backslash, double quote and newline escaped.
std::string EscapeLabelValue(std::string_view v);

}  // namespace faultline::metrics
