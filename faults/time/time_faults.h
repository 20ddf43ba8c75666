#pragma once

#include <chrono>

#include "faults/core/registry.h"

namespace faultline::faults::time {

struct TimeOptions {
  // Offsets beyond ± this are refused (agent flag --time-max-offset).
  std::chrono::nanoseconds max_offset = std::chrono::hours(24);
  // How long the target's threads may take to stop for a patch.
  std::chrono::milliseconds stop_timeout{5000};
};

// The host-free checks (spec.h) plus this agent's bound on the offset.
FieldErrors ValidateTimeFault(const v1::FaultSpec& spec, const TimeOptions& options = {});

// Registers the "time" family: offset the clocks of chosen processes (vDSO redirection; see
// faults/time/README.md).
void RegisterTimeFaults(Registry& registry, TimeOptions options = {});

}  // namespace faultline::faults::time
