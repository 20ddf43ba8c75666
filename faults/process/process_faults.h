#pragma once

#include "faults/core/registry.h"

namespace faultline::faults::process {

// Registers the "process" family: signal, kill, pause, restart.
void RegisterProcessFaults(Registry& registry);

}  // namespace faultline::faults::process
