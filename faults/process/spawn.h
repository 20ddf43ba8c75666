#pragma once

// Starting a child the way a supervisor must: into a network namespace, in its own session,
// with a clean signal state, stdout+stderr to a log, and every failure before exec reported to
// the parent with the stage that failed (setns, stdio, chdir, exec).

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "faults/sys/unique_fd.h"

namespace faultline::faults::process {

// Everything the child needs, prepared in the parent: after fork the child may only make
// async-signal-safe calls (the parent has threads), so nothing is allocated or opened there.
struct ExecPlan {
  std::vector<std::string> argv_store, env_store;
  std::vector<char*> argv, envp;
  sys::UniqueFd netns, log, devnull;
  std::string cwd;
};

// The agent's environment plus `env`; `netns` a namespace file path or empty; `log` empty for
// /dev/null. `who` prefixes errors. Throws FaultError if a file cannot be opened.
ExecPlan MakePlan(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env, const std::string& cwd,
                  const std::string& netns, const std::string& log, const std::string& who);

// fork + exec; returns the pid. Throws FaultError if the child could not get as far as exec.
pid_t Spawn(const ExecPlan& plan, const std::string& who);

}  // namespace faultline::faults::process
