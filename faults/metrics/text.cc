#include "faults/metrics/text.h"

#include <charconv>

namespace faultline::metrics {

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

void TextWriter::Family(std::string_view name, std::string_view help, Type type) {
  out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' '
       << (type == Type::kCounter ? "counter" : "gauge") << '\n';
}

void TextWriter::Series(std::string_view name, const Labels& labels) {
  out_ << name;
  if (labels.empty()) return;
  out_ << '{';
  for (size_t i = 0; i < labels.size(); ++i) {
    out_ << (i ? "," : "") << labels[i].first << "=\"" << EscapeLabelValue(labels[i].second) << '"';
  }
  out_ << '}';
}

void TextWriter::Sample(std::string_view name, const Labels& labels, int64_t value) {
  Series(name, labels);
  out_ << ' ' << value << '\n';
}

void TextWriter::Sample(std::string_view name, const Labels& labels, double value) {
  Series(name, labels);
  // Shortest exact form: the default stream precision would round large values.
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  out_ << ' ' << std::string_view(buf, r.ptr - buf) << '\n';
}

void TextWriter::Counter(std::string_view name, std::string_view help, int64_t value) {
  Family(name, help, Type::kCounter);
  Sample(name, {}, value);
}

void TextWriter::Gauge(std::string_view name, std::string_view help, int64_t value) {
  Family(name, help, Type::kGauge);
  Sample(name, {}, value);
}

}  // namespace faultline::metrics
