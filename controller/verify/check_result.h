#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace faultline::verify {

// The outcome of one check: pass/fail, a one-line summary, and the numbers that prove it
// (per member where it applies) as JSON, so a report can show them and a script can read them.
struct CheckResult {
  std::string name;
  bool passed = false;
  std::string summary;
  nlohmann::json evidence = nlohmann::json::object();
};

nlohmann::json ToJson(const CheckResult& r);
nlohmann::json ToJson(const std::vector<CheckResult>& rs);
// A text table: one row per check, then the evidence of failed checks.
std::string RenderTable(const std::vector<CheckResult>& rs);
bool AllPassed(const std::vector<CheckResult>& rs);

}  // namespace faultline::verify
