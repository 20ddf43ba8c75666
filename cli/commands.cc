#include "cli/commands.h"

#include "cli/check_command.h"
#include "cli/lab_command.h"
#include "cli/run_command.h"

namespace faultline::cli {

// The lab goes last: it lets the other commands' unknown options fall through to --lab/--target.
void AddAreaCommands(CLI::App& app, GlobalOptions& g) {
  AddCertsCommand(app);
  AddCheckCommand(app);
  AddWorkloadCommand(app);
  AddControllerCommands(app, g);
  AddEtcdCommand(app, g);
  AddReproduceCommand(app, g);
  AddLabCommand(app, g);
}

}  // namespace faultline::cli
