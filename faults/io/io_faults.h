#pragma once

#include "faults/core/registry.h"
#include "faults/io/overlay.h"

namespace faultline::faults::io {

// Registers the "io" family. Each IO fault arms one rule on the overlay that `manager` has
// mounted at IoFault.mount (the agent mounts overlays on request: `faultline overlay mount`);
// revert disarms it. The manager must outlive the registry's faults.
void RegisterIoFaults(Registry& registry, OverlayManager& manager);

}  // namespace faultline::faults::io
