#pragma once

#include <string>

#include "controller/daemon/service.h"

namespace faultline::controller {

// The controller's metrics in Prometheus text exposition format.
std::string RenderMetrics(const ControllerMetrics& m);

}  // namespace faultline::controller
