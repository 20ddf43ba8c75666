#pragma once

#include <functional>
#include <string>

#include "cli/agent_client.h"
#include "cli/exit_codes.h"
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

}  // namespace faultline::cli
