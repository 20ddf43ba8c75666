#pragma once

#include <CLI/CLI.hpp>

#include "cli/global_options.h"

namespace faultline::cli {

// Commands of the other areas (lab, check, overlay, ...), added as each lands.
void AddAreaCommands(CLI::App& app, GlobalOptions& g);

// `faultline certs init`.
void AddCertsCommand(CLI::App& app);

}  // namespace faultline::cli
