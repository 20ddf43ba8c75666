#include "cli/commands.h"

#include "cli/run_command.h"

namespace faultline::cli {

void AddAreaCommands(CLI::App& app, GlobalOptions& g) { AddControllerCommands(app, g); }

}  // namespace faultline::cli
