#include "cli/commands.h"

namespace faultline::cli {

void AddAreaCommands(CLI::App& app, GlobalOptions&) { AddCertsCommand(app); }

}  // namespace faultline::cli
