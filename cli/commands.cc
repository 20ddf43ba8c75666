#include "cli/commands.h"

#include "cli/lab_command.h"

namespace faultline::cli {

void AddAreaCommands(CLI::App& app, GlobalOptions& g) { AddLabCommand(app, g); }

}  // namespace faultline::cli
