#include "controller/verify/liveness_agents.h"

namespace faultline::verify {

std::vector<SupervisedProcess> FromAgent(const v1::ProcessesResponse& resp,
                                         const std::string& fallback_member) {
  auto label = resp.labels().find("member");
  const std::string member = label != resp.labels().end() ? label->second : fallback_member;
  std::vector<SupervisedProcess> out;
  for (const auto& p : resp.processes()) {
    SupervisedProcess s;
    s.member = member;
    s.process = p.name();
    s.pid = p.pid();
    s.restarts = p.restarts();
    s.restart = p.restart();
    s.log = p.log();
    for (const auto& e : p.events()) {
      SupervisedProcess::Event ev;
      ev.kind = e.kind();
      ev.at_ms = e.at().seconds() * 1000 + e.at().nanos() / 1'000'000;
      ev.pid = e.pid();
      ev.cause = e.cause();
      ev.expected = e.expected();
      ev.expected_by = e.expected_by();
      ev.fatal_lines.assign(e.fatal_lines().begin(), e.fatal_lines().end());
      ev.output_tail = e.output_tail();
      s.events.push_back(std::move(ev));
    }
    out.push_back(std::move(s));
  }
  return out;
}

SupervisedProcess AgentNotAnswering(const std::string& member, const std::string& error) {
  SupervisedProcess s;
  s.member = member;
  s.answered = false;
  s.error = error;
  return s;
}

}  // namespace faultline::verify
