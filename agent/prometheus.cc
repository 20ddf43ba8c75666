#include "agent/prometheus.h"

#include <sstream>

namespace faultline::agent {
namespace {

std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void Counter(std::ostringstream& o, const char* name, const char* help, int64_t v) {
  o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n"
    << name << ' ' << v << '\n';
}

}  // namespace

std::string RenderMetrics(const FaultManager& manager) {
  std::ostringstream o;
  auto faults = manager.ActiveStatuses();
  o << "# HELP faultline_agent_active_faults Faults currently applied by this agent.\n"
    << "# TYPE faultline_agent_active_faults gauge\n"
    << "faultline_agent_active_faults " << faults.size() << '\n';
  const auto& m = manager.metrics();
  Counter(o, "faultline_agent_injections_total", "Faults applied.", m.injections);
  Counter(o, "faultline_agent_injection_failures_total", "Injections that failed to apply.",
          m.injection_failures);
  Counter(o, "faultline_agent_reverts_total", "Faults reverted.", m.reverts);
  Counter(o, "faultline_agent_revert_failures_total", "Reverts that failed.", m.revert_failures);
  Counter(o, "faultline_agent_lease_expiries_total", "Faults reverted because their lease lapsed.",
          m.lease_expiries);
  Counter(o, "faultline_agent_startup_reverts_total",
          "Faults left by a previous agent and reverted at start.", m.startup_reverts);
  o << "# HELP faultline_fault_counter What an active fault has done (per fault and counter).\n"
    << "# TYPE faultline_fault_counter gauge\n";
  for (const auto& f : faults) {
    for (const auto& [k, v] : f.counters()) {
      o << "faultline_fault_counter{fault_id=\"" << Escape(f.id()) << "\",kind=\""
        << Escape(f.kind()) << "\",experiment=\"" << Escape(f.experiment_id()) << "\",counter=\""
        << Escape(k) << "\"} " << v << '\n';
    }
  }
  return o.str();
}

}  // namespace faultline::agent
