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
  // The check found nothing to judge (no member answered, no op of its kind in the history):
  // it did not pass, and its summary says what was missing. Such a check does not fail a set
  // of checks that has other passes, but a set with nothing but these passes nothing.
  bool no_evidence = false;
};

// A result that saw nothing to judge: not passed, flagged, the summary saying what was missing.
CheckResult NoEvidence(std::string name, std::string what_was_missing);

nlohmann::json ToJson(const CheckResult& r);
nlohmann::json ToJson(const std::vector<CheckResult>& rs);
// A text table: one row per check, then the evidence of failed checks.
std::string RenderTable(const std::vector<CheckResult>& rs);
// No check failed and at least one passed (checks without evidence neither pass nor fail).
bool AllPassed(const std::vector<CheckResult>& rs);

}  // namespace faultline::verify
