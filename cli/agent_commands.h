#pragma once

#include <CLI/CLI.hpp>

#include "cli/global_options.h"

namespace faultline::cli {

// `status`, `recover`, `renew`: talk to one agent about its faults.
void AddAgentCommands(CLI::App& app, GlobalOptions& g);

}  // namespace faultline::cli
