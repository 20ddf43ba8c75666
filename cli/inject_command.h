#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "cli/global_options.h"
#include "faultline/v1/fault.pb.h"
#include "faults/core/names.h"

namespace faultline::cli {

// The flags every `inject` subcommand shares, and how a filled-in spec is sent.
struct InjectCommon {
  std::string duration;
  std::string lease;
  uint64_t seed = 0;
  bool seed_set = false;
  std::string experiment;
  bool dry_run = false;
  // Adds --duration, --lease, --seed, --experiment, --dry-run to `cmd`.
  void AddFlags(CLI::App* cmd);
  // Fills duration/seed into `spec`, sends it, prints the result. Throws on failure.
  void Submit(GlobalOptions& g, v1::FaultSpec spec) const;
};

// The target flags of families that act on processes (process, time): --pid, --name, --cmdline,
// --cgroup, --unit, --managed (exactly one) and --one.
struct ProcessTargetFlags {
  int pid = 0;
  std::string name, cmdline, cgroup, unit, managed;
  bool one = false;
  void AddFlags(CLI::App* cmd);
  void Fill(const CLI::App* cmd, v1::ProcessTarget* t) const;
};

// `faultline inject <family> <action> ...`: one subcommand per fault family.
void AddInjectCommand(CLI::App& app, GlobalOptions& g);

// Family subcommands, each in its own file. Flag storage is owned by each subcommand's callback
// (CLI11 binds options to storage that must live as long as the App).
void AddInjectProcess(CLI::App* inject, GlobalOptions& g);

// "TERM", "SIGTERM", "15" -> 15; 0 if unknown.
int ParseSignal(const std::string& text);
// Parses a duration flag; throws CLI::ValidationError naming the flag.
std::chrono::nanoseconds DurationFlag(const std::string& flag, const std::string& value);

// A flag naming a spec enum's value, spelled as the family's name table spells it
// (faults/core/names.h); throws CLI::ValidationError naming the flag and the choices.
template <typename Enum>
Enum EnumFlag(const std::string& flag, const std::string& value) {
  if (auto e = faults::ParseName<Enum>(value)) return *e;
  throw CLI::ValidationError(flag, "\"" + value + "\": one of " + faults::Choices<Enum>());
}

// CLI11's membership check listing a spec enum's names.
template <typename Enum>
CLI::IsMember NamesOf() {
  std::vector<std::string> names;
  for (const auto& [name, value] : faults::Names<Enum>()) names.push_back(name);
  return CLI::IsMember(names);
}

}  // namespace faultline::cli
