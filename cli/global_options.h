#pragma once

#include <functional>
#include <string>

#include "cli/agent_client.h"
#include "cli/output.h"

namespace faultline::cli {

// Flags every command shares.
struct GlobalOptions {
  AgentAddress agent;
  std::string output = "table";
  Format format() const { return output == "json" ? Format::kJson : Format::kTable; }
  // Resolves which agent to talk to just before a command runs (the lab sets --lab/--target
  // here). Empty: use `agent` as given.
  std::function<void(GlobalOptions&)> resolve_agent;
  void Resolve() {
    if (resolve_agent) resolve_agent(*this);
  }
};

// Exit codes: what a script can tell apart.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // the operation ran and failed (or a check failed)
inline constexpr int kExitUsage = 2;        // bad flags or spec
inline constexpr int kExitUnreachable = 3;  // agent/controller not reachable

}  // namespace faultline::cli
