#include "cli/commands.h"

namespace faultline::cli {

void AddAreaCommands(CLI::App&, GlobalOptions&) {}

}  // namespace faultline::cli
