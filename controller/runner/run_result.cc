#include "controller/runner/run_result.h"

#include <algorithm>
#include <cctype>

namespace faultline::controller {

std::string StateName(v1::Run::State s) {
  std::string n = v1::Run::State_Name(s);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  return n;
}

v1::Run::State StateFromName(const std::string& name) {
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  v1::Run::State s;
  if (upper.empty() || !v1::Run::State_Parse(upper, &s)) return v1::Run::ERROR;
  return s;
}

std::vector<const CheckOutcome*> RunResult::failing() const {
  std::vector<const CheckOutcome*> out;
  for (const auto& c : checks) {
    if (!c.passed) out.push_back(&c);
  }
  return out;
}

nlohmann::json ToJson(const RunResult& r) {
  using nlohmann::json;
  json j;
  j["format"] = "faultline-run";
  j["version"] = 1;
  j["run_id"] = r.run_id;
  j["experiment"] = r.experiment;
  j["source"] = r.source;
  j["seed"] = r.seed;
  j["state"] = StateName(r.state);
  j["error"] = r.error;
  j["started_at_unix"] = r.started_at_unix;
  j["duration_s"] = r.duration_s;
  j["members"] = r.members;
  j["events"] = json::array();
  for (const auto& e : r.events) {
    j["events"].push_back({{"t", e.t},
                           {"kind", e.kind},
                           {"step", e.step},
                           {"agent", e.agent},
                           {"member", e.member},
                           {"fault_id", e.fault_id},
                           {"message", e.message}});
  }
  j["fault_windows"] = json::array();
  for (const auto& w : r.windows) {
    j["fault_windows"].push_back({{"step", w.step},
                                  {"agent", w.agent},
                                  {"member", w.member},
                                  {"fault_id", w.fault_id},
                                  {"kind", w.kind},
                                  {"start", w.start},
                                  {"end", w.end},
                                  {"counters", w.counters},
                                  {"accuracy", w.accuracy}});
  }
  j["latency"] = json::array();
  for (const auto& l : r.latency) {
    j["latency"].push_back({{"second", l.second},
                            {"ops", l.ops},
                            {"errors", l.errors},
                            {"p50_ms", l.p50_ms},
                            {"p99_ms", l.p99_ms}});
  }
  j["leaders"] = json::array();
  for (const auto& s : r.leaders) {
    j["leaders"].push_back({{"t", s.t}, {"leader_by_member", s.leader_by_member}});
  }
  j["checks"] = json::array();
  for (const auto& c : r.checks) {
    j["checks"].push_back({{"name", c.name},
                           {"slo", c.slo},
                           {"passed", c.passed},
                           {"summary", c.summary},
                           {"evidence", c.evidence}});
  }
  return j;
}

RunResult RunResultFromJson(const nlohmann::json& j) {
  RunResult r;
  r.run_id = j.value("run_id", "");
  r.experiment = j.value("experiment", "");
  r.source = j.value("source", "");
  r.seed = j.value("seed", uint64_t{0});
  r.state = StateFromName(j.value("state", "error"));
  r.error = j.value("error", "");
  r.started_at_unix = j.value("started_at_unix", 0.0);
  r.duration_s = j.value("duration_s", 0.0);
  r.members = j.value("members", std::vector<std::string>{});
  for (const auto& e : j.value("events", nlohmann::json::array())) {
    r.events.push_back({e.value("t", 0.0), e.value("kind", ""), e.value("step", ""),
                        e.value("agent", ""), e.value("member", ""), e.value("fault_id", ""),
                        e.value("message", "")});
  }
  for (const auto& w : j.value("fault_windows", nlohmann::json::array())) {
    r.windows.push_back(
        {w.value("step", ""), w.value("agent", ""), w.value("member", ""), w.value("fault_id", ""),
         w.value("kind", ""), w.value("start", 0.0), w.value("end", -1.0),
         w.value("counters", std::map<std::string, int64_t>{}), w.value("accuracy", "")});
  }
  for (const auto& l : j.value("latency", nlohmann::json::array())) {
    r.latency.push_back({l.value("second", 0), l.value("ops", 0), l.value("errors", 0),
                         l.value("p50_ms", 0.0), l.value("p99_ms", 0.0)});
  }
  for (const auto& s : j.value("leaders", nlohmann::json::array())) {
    r.leaders.push_back(
        {s.value("t", 0.0), s.value("leader_by_member", std::map<std::string, std::string>{})});
  }
  for (const auto& c : j.value("checks", nlohmann::json::array())) {
    r.checks.push_back({c.value("name", ""), c.value("slo", false), c.value("passed", false),
                        c.value("summary", ""), c.value("evidence", nlohmann::json::object())});
  }
  return r;
}

}  // namespace faultline::controller
