#include "controller/verify/liveness.h"

#include <ctime>

namespace faultline::verify {

using nlohmann::json;

namespace {

constexpr size_t kQuotedLines = 3;

std::string Clock(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return std::string(buf) + "." + std::to_string(1000 + ms % 1000).substr(1) + "Z";
}

}  // namespace

CheckResult CheckLiveness(const std::vector<SupervisedProcess>& seen,
                          const LivenessOptions& options) {
  CheckResult r{"liveness"};
  json members = json::object();
  std::vector<std::string> crashes, silent, meant;
  size_t judged = 0;
  json findings = json::array();
  for (const SupervisedProcess& p : seen) {
    if (!p.answered) {
      silent.push_back(p.member + " (" + p.error + ")");
      members[p.member] = {{"error", p.error}};
      continue;
    }
    if (!options.process.empty() && p.process != options.process) continue;
    ++judged;
    json m = {{"process", p.process},
              {"pid", p.pid},
              {"running", p.pid != 0},
              {"restarts", p.restarts},
              {"exits", json::array()}};
    for (const auto& e : p.events) {
      if (e.kind != "exit" || e.at_ms < options.since_ms) continue;
      json x = {{"at", Clock(e.at_ms)},
                {"at_ms", e.at_ms},
                {"pid", e.pid},
                {"cause", e.cause},
                {"expected", e.expected}};
      if (e.expected) {
        x["expected_by"] = e.expected_by;
        meant.push_back(p.member + " " + e.expected_by);
      } else {
        x["fatal_lines"] = e.fatal_lines;
        x["output_tail"] = e.output_tail;
        std::string what = p.process + " on " + p.member + " (pid " + std::to_string(e.pid) + ") " +
                           e.cause + " at " + Clock(e.at_ms);
        if (!e.fatal_lines.empty()) {
          what += ": ";
          for (size_t i = 0; i < e.fatal_lines.size() && i < kQuotedLines; ++i) {
            what += (i ? " | " : "") + e.fatal_lines[i];
          }
        } else if (p.log.empty()) {
          what += " (its output is not kept: no log configured)";
        } else {
          what += " (no panic or fatal line in its output)";
        }
        crashes.push_back(what);
        findings.push_back({{"member", p.member}, {"process", p.process}, {"exit", x}});
      }
      m["exits"].push_back(x);
    }
    members[p.member + "/" + p.process] = m;
  }
  r.evidence = {{"members", members}, {"unexpected_exits", findings}, {"meant_exits", meant}};
  if (judged == 0 && silent.empty()) {
    CheckResult none = NoEvidence(
        r.name, "no agent supervises " + (options.process.empty() ? "a process" : options.process) +
                    " (liveness is only seen by agents that run it as a managed process)");
    none.evidence = r.evidence;
    return none;
  }
  std::string s;
  if (!crashes.empty()) {
    s = std::to_string(crashes.size()) + " exit(s) nobody meant: ";
    for (size_t i = 0; i < crashes.size(); ++i) s += (i ? "; " : "") + crashes[i];
  }
  if (!silent.empty()) {
    s += (s.empty() ? "" : "; ") + std::string("agent(s) not answering: ");
    for (size_t i = 0; i < silent.size(); ++i) s += (i ? ", " : "") + silent[i];
  }
  r.passed = crashes.empty() && silent.empty();
  if (r.passed) {
    s = (options.process.empty() ? std::string("every supervised process") : options.process) +
        " ran without an exit of its own on " + std::to_string(judged) + " member(s)";
  }
  if (!meant.empty()) {
    s += " (" + std::to_string(meant.size()) + " exit(s) meant by a fault or the agent: ";
    for (size_t i = 0; i < meant.size() && i < 5; ++i) s += (i ? ", " : "") + meant[i];
    if (meant.size() > 5) s += ", ...";
    s += ")";
  }
  r.summary = s;
  return r;
}

}  // namespace faultline::verify
