#pragma once

#include <string>

#include "agent/fault_manager.h"

namespace faultline::agent {

// The agent's metrics in Prometheus text exposition format.
std::string RenderMetrics(const FaultManager& manager);

}  // namespace faultline::agent
