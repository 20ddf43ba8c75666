#include "faults/stress/size.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace faultline::faults::stress {

std::optional<MemorySize> ParseSize(std::string_view text, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<MemorySize> {
    if (why != nullptr) *why = std::move(reason);
    return std::nullopt;
  };
  std::string s(text);
  if (s.empty()) return fail("empty size");
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(s, &pos);
  } catch (const std::exception&) {
    return fail("\"" + s + "\" does not start with a number");
  }
  if (!std::isfinite(value) || value < 0) return fail("\"" + s + "\" is not a positive size");
  std::string unit = s.substr(pos);
  MemorySize out;
  if (unit == "%") {
    if (value <= 0 || value > 100) return fail("percent must be in (0, 100], got " + s);
    out.percent = value;
    return out;
  }
  static const struct {
    const char* name;
    double factor;
  } kUnits[] = {
      {"", 1},
      {"B", 1},
      {"KiB", 1024.0},
      {"MiB", 1024.0 * 1024},
      {"GiB", 1024.0 * 1024 * 1024},
      {"TiB", 1024.0 * 1024 * 1024 * 1024},
      {"Ki", 1024.0},
      {"Mi", 1024.0 * 1024},
      {"Gi", 1024.0 * 1024 * 1024},
      // stress-ng and most tools read a single letter as binary.
      {"K", 1024.0},
      {"M", 1024.0 * 1024},
      {"G", 1024.0 * 1024 * 1024},
      {"T", 1024.0 * 1024 * 1024 * 1024},
      {"kB", 1e3},
      {"KB", 1e3},
      {"MB", 1e6},
      {"GB", 1e9},
      {"TB", 1e12},
  };
  for (const auto& u : kUnits) {
    if (unit == u.name) {
      double bytes = value * u.factor;
      if (bytes < 1) return fail("\"" + s + "\" is less than one byte");
      if (bytes > 1.8e19) return fail("\"" + s + "\" is too large");
      out.bytes = static_cast<uint64_t>(bytes);
      return out;
    }
  }
  return fail("unknown unit \"" + unit + "\" in \"" + s +
              "\" (use B, KiB, MiB, GiB, TiB, kB, MB, GB, TB or %)");
}

std::string FormatBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int i = 0;
  while (v >= 1024 && i < 4) {
    v /= 1024;
    ++i;
  }
  char buf[32];
  if (v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.0f%s", v, units[i]);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f%s", v, units[i]);
  }
  return buf;
}

MemInfo ReadMemInfo() {
  MemInfo m;
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb;
  std::string unit;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    if (!(ls >> key >> kb)) continue;
    if (key == "MemTotal:") m.total = kb * 1024;
    if (key == "MemAvailable:") m.available = kb * 1024;
  }
  return m;
}

}  // namespace faultline::faults::stress
