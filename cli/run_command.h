#pragma once

#include <CLI/CLI.hpp>

#include "cli/global_options.h"

namespace faultline::cli {

// `faultline run`, `faultline gate`, `faultline runs` and `faultline schedule`: experiments run
// by an embedded runner (agents and etcd endpoints from a lab or flags) or by a controller.
void AddControllerCommands(CLI::App& app, GlobalOptions& g);

// `faultline reproduce FILE --etcd-version V`: the experiment on a fresh lab per run, with the
// reproduction rate and the first failing run's reports.
void AddReproduceCommand(CLI::App& app, GlobalOptions& g);

}  // namespace faultline::cli
