#pragma once

#include <CLI/CLI.hpp>

#include "cli/global_options.h"

namespace faultline::cli {

// `faultline lab up|down|status|endpoints`, plus the global `--lab NAME` / `--target MEMBER`
// that point every agent command at a lab member's agent (`faultline inject ... --lab x
// --target e1`). Call after every other command was added: it lets their unknown options
// fall through to these global ones.
void AddLabCommand(CLI::App& app, GlobalOptions& g);

// `faultline etcd install|list`: the etcd versions `lab up --etcd-version` can run.
void AddEtcdCommand(CLI::App& app, GlobalOptions& g);

}  // namespace faultline::cli
