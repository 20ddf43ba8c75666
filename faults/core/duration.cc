#include "faults/core/duration.h"

#include <google/protobuf/duration.pb.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace faultline::faults {
namespace {

struct Unit {
  std::string_view suffix;
  double ns;
};
// Longest suffix first so "ms" is not read as "m" followed by garbage.
constexpr std::array<Unit, 7> kUnits = {
    {{"ns", 1}, {"us", 1e3}, {"µs", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}}};

}  // namespace

std::optional<std::chrono::nanoseconds> ParseDuration(std::string_view text, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<std::chrono::nanoseconds> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  if (text.empty()) return fail("empty duration");
  bool negative = false;
  if (text.front() == '-' || text.front() == '+') {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text == "0") return std::chrono::nanoseconds(0);
  double total = 0;
  while (!text.empty()) {
    size_t i = 0;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
    if (i == 0) return fail("expected a number in \"" + std::string(text) + "\"");
    std::string number(text.substr(0, i));
    text.remove_prefix(i);
    char* end = nullptr;
    double value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size()) return fail("bad number \"" + number + "\"");
    const Unit* unit = nullptr;
    for (const auto& u : kUnits) {
      if (text.starts_with(u.suffix) &&
          (unit == nullptr || u.suffix.size() > unit->suffix.size())) {
        unit = &u;
      }
    }
    if (unit == nullptr) {
      return fail("missing or unknown unit after " + number + " (use ns, us, ms, s, m, h)");
    }
    text.remove_prefix(unit->suffix.size());
    total += value * unit->ns;
  }
  if (total > 9.2e18) return fail("duration too large");
  auto ns = std::chrono::nanoseconds(static_cast<int64_t>(std::llround(total)));
  return negative ? -ns : ns;
}

std::string FormatDuration(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  if (d == nanoseconds(0)) return "0s";
  std::string out;
  if (d < nanoseconds(0)) {
    out = "-";
    d = -d;
  }
  if (d < microseconds(1)) return out + std::to_string(d.count()) + "ns";
  if (d < milliseconds(1))
    return out + std::to_string(duration_cast<microseconds>(d).count()) + "us";
  if (d < seconds(1)) return out + std::to_string(duration_cast<milliseconds>(d).count()) + "ms";
  auto h = duration_cast<hours>(d);
  d -= h;
  auto m = duration_cast<minutes>(d);
  d -= m;
  auto ms = duration_cast<milliseconds>(d);
  if (h.count()) out += std::to_string(h.count()) + "h";
  if (m.count()) out += std::to_string(m.count()) + "m";
  if (ms.count()) {
    if (ms.count() % 1000 == 0) {
      out += std::to_string(ms.count() / 1000) + "s";
    } else {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3gs", ms.count() / 1000.0);
      out += buf;
    }
  }
  return out;
}

std::chrono::nanoseconds FromProto(const google::protobuf::Duration& d) {
  return std::chrono::seconds(d.seconds()) + std::chrono::nanoseconds(d.nanos());
}

void ToProto(std::chrono::nanoseconds d, google::protobuf::Duration* out) {
  out->set_seconds(d.count() / 1'000'000'000);
  out->set_nanos(static_cast<int32_t>(d.count() % 1'000'000'000));
}

}  // namespace faultline::faults
