#include "controller/verify/check_result.h"

#include <algorithm>
#include <sstream>

namespace faultline::verify {

CheckResult NoEvidence(std::string name, std::string what_was_missing) {
  CheckResult r{std::move(name)};
  r.no_evidence = true;
  r.summary = "nothing to check: " + std::move(what_was_missing);
  return r;
}

nlohmann::json ToJson(const CheckResult& r) {
  nlohmann::json j = {
      {"name", r.name}, {"passed", r.passed}, {"summary", r.summary}, {"evidence", r.evidence}};
  if (r.no_evidence) j["no_evidence"] = true;
  return j;
}

nlohmann::json ToJson(const std::vector<CheckResult>& rs) {
  nlohmann::json checks = nlohmann::json::array();
  for (const CheckResult& r : rs) checks.push_back(ToJson(r));
  return {{"passed", AllPassed(rs)}, {"checks", checks}};
}

bool AllPassed(const std::vector<CheckResult>& rs) {
  bool any = false;
  for (const CheckResult& r : rs) {
    if (!r.passed && !r.no_evidence) return false;
    any = any || r.passed;
  }
  return any;
}

std::string RenderTable(const std::vector<CheckResult>& rs) {
  size_t width = 5;
  for (const CheckResult& r : rs) width = std::max(width, r.name.size());
  std::ostringstream s;
  s << "CHECK" << std::string(width - 5 + 2, ' ') << "RESULT  SUMMARY\n";
  for (const CheckResult& r : rs) {
    s << r.name << std::string(width - r.name.size() + 2, ' ')
      << (r.passed        ? "pass  "
          : r.no_evidence ? "none  "
                          : "FAIL  ")
      << "  " << r.summary << "\n";
  }
  for (const CheckResult& r : rs) {
    if (r.passed || r.no_evidence) continue;
    s << "\n" << r.name << " evidence:\n" << r.evidence.dump(2) << "\n";
  }
  return s.str();
}

}  // namespace faultline::verify
