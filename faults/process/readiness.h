#pragma once

// Readiness probes of managed processes (TCP connect, HTTP GET answering 2xx, a command exiting
// 0), run inside the process's network namespace.

#include <string>

#include "faults/process/managed_config.h"

namespace faultline::faults::process {

// One probe attempt, in `netns` (a path, or empty for the caller's namespace).
bool ProbeOnce(const ReadinessProbe& probe, const std::string& netns);

}  // namespace faultline::faults::process
