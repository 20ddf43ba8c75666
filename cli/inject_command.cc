#include "cli/inject_command.h"

#include <string.h>

#include <iostream>
#include <random>

#include "cli/inject_families.h"
#include "faults/core/duration.h"
#include "faults/specs/specs.h"

namespace faultline::cli {

int ParseSignal(const std::string& text) {
  if (text.empty()) return 0;
  if (std::all_of(text.begin(), text.end(), ::isdigit)) return std::stoi(text);
  std::string name = text;
  for (auto& c : name) c = static_cast<char>(::toupper(c));
  if (name.starts_with("SIG")) name = name.substr(3);
  for (int s = 1; s < 65; ++s) {
    const char* abbrev = sigabbrev_np(s);
    if (abbrev != nullptr && name == abbrev) return s;
  }
  return 0;
}

std::chrono::nanoseconds DurationFlag(const std::string& flag, const std::string& value) {
  std::string why;
  auto d = faults::ParseDuration(value, &why);
  if (!d) throw CLI::ValidationError(flag, "\"" + value + "\": " + why);
  return *d;
}

void InjectCommon::AddFlags(CLI::App* cmd) {
  cmd->add_option("--duration", duration,
                  "how long the fault lasts (e.g. 30s, 5m); default: "
                  "until recovered or its lease lapses");
  cmd->add_option("--lease", lease,
                  "dead-man switch: revert unless renewed within this time (default: the "
                  "duration, or the agent's default lease)");
  cmd->add_option("--seed", seed, "seed for every random choice (default: random, printed)")
      ->each([this](const std::string&) { seed_set = true; });
  cmd->add_option("--experiment", experiment, "experiment id to group faults under");
  cmd->add_flag("--dry-run", dry_run, "validate and resolve targets; change nothing");
}

void InjectCommon::Submit(GlobalOptions& g, v1::FaultSpec spec) const {
  v1::InjectRequest req;
  if (!duration.empty()) {
    faults::ToProto(DurationFlag("--duration", duration), spec.mutable_duration());
  } else if (auto implied = faults::ImpliedDuration(spec); implied.count() > 0) {
    // The family's rule: a kill with --restart-after ends with the restart.
    faults::ToProto(implied, spec.mutable_duration());
  }
  if (!lease.empty()) faults::ToProto(DurationFlag("--lease", lease), req.mutable_lease());
  spec.set_seed(seed_set ? seed : std::random_device{}());
  *req.mutable_spec() = spec;
  req.set_experiment_id(experiment);
  req.set_dry_run(dry_run);
  g.Resolve();
  auto stub = ConnectAgent(g.agent);
  v1::InjectResponse resp;
  Check(stub->Inject(Context(g.agent).get(), req, &resp), g.agent.address);
  if (g.format() == Format::kJson) {
    std::cout << ToJson(resp.fault()) << "\n";
  } else if (dry_run) {
    std::cout << "dry run: would apply " << resp.fault().kind() << ": "
              << resp.fault().description() << "\n";
  } else {
    std::cout << FaultTable({resp.fault()}) << "seed " << spec.seed()
              << " (pass --seed to replay the same choices)\n";
  }
}

void AddInjectCommand(CLI::App& app, GlobalOptions& g) {
  auto* inject = app.add_subcommand("inject", "inject a fault through an agent");
  inject->require_subcommand(1);
  AddInjectProcess(inject, g);
  AddInjectIo(inject, g);
  AddInjectNet(inject, g);
  AddInjectStress(inject, g);
  AddInjectSyscall(inject, g);
  AddInjectTime(inject, g);
}

}  // namespace faultline::cli
