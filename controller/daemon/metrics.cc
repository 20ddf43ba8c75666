#include "controller/daemon/metrics.h"

#include <algorithm>

#include "faults/metrics/text.h"

namespace faultline::controller {

using metrics::TextWriter;

std::string RenderMetrics(const ControllerMetrics& m) {
  TextWriter o;
  o.Gauge("faultline_controller_active",
          "1 on the active controller replica (always with the embedded store), 0 on a standby.",
          m.active ? 1 : 0);
  // Every state is listed, zero or not, so a series does not vanish while its count is zero.
  o.Family("faultline_controller_runs", "Runs the controller knows (its stored history), by state.",
           TextWriter::Type::kGauge);
  for (int s = v1::Run::RUNNING; s <= v1::Run::INTERRUPTED; ++s) {
    if (!v1::Run::State_IsValid(s)) continue;
    auto state = static_cast<v1::Run::State>(s);
    std::string name = v1::Run::State_Name(state);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    auto it = m.runs.find(state);
    o.Sample("faultline_controller_runs", {{"state", name}}, it == m.runs.end() ? 0 : it->second);
  }
  auto running = m.runs.find(v1::Run::RUNNING);
  o.Gauge("faultline_controller_runs_active", "Runs in progress (on demand and scheduled).",
          running == m.runs.end() ? 0 : running->second);

  int64_t paused = 0;
  for (const auto& s : m.schedules) paused += s.paused;
  o.Family("faultline_controller_schedules", "Schedules, by whether they are paused.",
           TextWriter::Type::kGauge);
  o.Sample("faultline_controller_schedules", {{"state", "active"}},
           int64_t(m.schedules.size()) - paused);
  o.Sample("faultline_controller_schedules", {{"state", "paused"}}, paused);
  struct PerSchedule {
    const char* name;
    const char* help;
    TextWriter::Type type;
    int64_t (*value)(const ControllerMetrics::Schedule&);
  };
  const PerSchedule per[] = {
      {"faultline_controller_schedule_paused", "1 while the schedule is paused.",
       TextWriter::Type::kGauge, [](const auto& s) { return int64_t(s.paused); }},
      {"faultline_controller_schedule_active_runs", "Runs the schedule started that still run.",
       TextWriter::Type::kGauge, [](const auto& s) { return s.active_runs; }},
      {"faultline_controller_schedule_skipped_total",
       "Due times skipped because a run was still active (concurrencyPolicy Forbid).",
       TextWriter::Type::kCounter, [](const auto& s) { return int64_t(s.skipped); }},
      {"faultline_controller_schedule_missed_total",
       "Due times missed (controller down or busy past startingDeadlineSeconds).",
       TextWriter::Type::kCounter, [](const auto& s) { return int64_t(s.missed); }},
      {"faultline_controller_schedule_next_run_timestamp_seconds",
       "When the schedule is next due (unix seconds); 0 while paused.", TextWriter::Type::kGauge,
       [](const auto& s) { return s.next_run_unix; }},
  };
  for (const auto& p : per) {
    o.Family(p.name, p.help, p.type);
    for (const auto& s : m.schedules) o.Sample(p.name, {{"schedule", s.name}}, p.value(s));
  }

  o.Gauge("faultline_controller_agents_registered", "Agents that registered with the controller.",
          m.agents_registered);
  o.Gauge("faultline_controller_agents_alive",
          "Registered agents whose last heartbeat is at most three intervals old.", m.agents_alive);
  o.Gauge("faultline_controller_agents_static", "Agents given on the command line (--agents).",
          m.agents_static);
  return o.str();
}

}  // namespace faultline::controller
