#pragma once

#include "faultline/v1/fault.pb.h"
#include "faults/core/registry.h"
#include "faults/io/overlay_process.h"
#include "faults/io/rules.h"

namespace faultline::faults::io {

// Registers the "io" family. Each IO fault arms one rule on the overlay that `manager` has
// mounted at IoFault.mount (the agent mounts overlays on request: `faultline overlay mount`);
// revert disarms it. The manager must outlive the registry's faults.
void RegisterIoFaults(Registry& registry, OverlayManager& manager);

// The overlay rule an io fault spec arms (the spec was validated). Crash restarts are the
// agent's (it owns the managed processes), so after_crash is left empty.
RuleSpec RuleFromSpec(const v1::FaultSpec& spec);

}  // namespace faultline::faults::io
