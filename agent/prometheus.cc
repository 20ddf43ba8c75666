#include "agent/prometheus.h"

#include "faults/metrics/text.h"

namespace faultline::agent {

std::string RenderMetrics(const FaultManager& manager) {
  metrics::TextWriter o;
  auto faults = manager.ActiveStatuses();
  o.Gauge("faultline_agent_active_faults", "Faults currently applied by this agent.",
          int64_t(faults.size()));
  const auto& m = manager.metrics();
  o.Counter("faultline_agent_injections_total", "Faults applied.", m.injections);
  o.Counter("faultline_agent_injection_failures_total", "Injections that failed to apply.",
            m.injection_failures);
  o.Counter("faultline_agent_reverts_total", "Faults reverted.", m.reverts);
  o.Counter("faultline_agent_revert_failures_total", "Reverts that failed.", m.revert_failures);
  o.Counter("faultline_agent_lease_expiries_total", "Faults reverted because their lease lapsed.",
            m.lease_expiries);
  o.Counter("faultline_agent_startup_reverts_total",
            "Faults left by a previous agent and reverted at start.", m.startup_reverts);
  o.Family("faultline_fault_counter", "What an active fault has done (per fault and counter).",
           metrics::TextWriter::Type::kGauge);
  for (const auto& f : faults) {
    for (const auto& [k, v] : f.counters()) {
      o.Sample("faultline_fault_counter",
               {{"fault_id", f.id()},
                {"kind", f.kind()},
                {"experiment", f.experiment_id()},
                {"counter", k}},
               int64_t(v));
    }
  }
  return o.str();
}

}  // namespace faultline::agent
