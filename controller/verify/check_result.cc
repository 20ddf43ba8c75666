#include "controller/verify/check_result.h"

#include <algorithm>
#include <sstream>

namespace faultline::verify {

nlohmann::json ToJson(const CheckResult& r) {
  return {{"name", r.name}, {"passed", r.passed}, {"summary", r.summary}, {"evidence", r.evidence}};
}

nlohmann::json ToJson(const std::vector<CheckResult>& rs) {
  nlohmann::json checks = nlohmann::json::array();
  for (const CheckResult& r : rs) checks.push_back(ToJson(r));
  return {{"passed", AllPassed(rs)}, {"checks", checks}};
}

bool AllPassed(const std::vector<CheckResult>& rs) {
  return std::all_of(rs.begin(), rs.end(), [](const CheckResult& r) { return r.passed; });
}

std::string RenderTable(const std::vector<CheckResult>& rs) {
  size_t width = 5;
  for (const CheckResult& r : rs) width = std::max(width, r.name.size());
  std::ostringstream s;
  s << "CHECK" << std::string(width - 5 + 2, ' ') << "RESULT  SUMMARY\n";
  for (const CheckResult& r : rs) {
    s << r.name << std::string(width - r.name.size() + 2, ' ') << (r.passed ? "pass  " : "FAIL  ")
      << "  " << r.summary << "\n";
  }
  for (const CheckResult& r : rs) {
    if (r.passed) continue;
    s << "\n" << r.name << " evidence:\n" << r.evidence.dump(2) << "\n";
  }
  return s.str();
}

}  // namespace faultline::verify
