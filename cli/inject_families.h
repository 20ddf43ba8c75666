#pragma once

#include <CLI/CLI.hpp>

#include "cli/global_options.h"

namespace faultline::cli {

// `faultline inject stress cpu|memory ...` (faults/stress).
void AddInjectStress(CLI::App* inject, GlobalOptions& g);
// `faultline inject io latency|errno|short|corrupt|attr|enospc --mount DIR ...`.
void AddInjectIo(CLI::App* inject, GlobalOptions& g);
// `faultline inject net delay|loss|duplicate|corrupt|reorder|bandwidth|partition ...`.
void AddInjectNet(CLI::App* inject, GlobalOptions& g);
// `faultline inject syscall --managed NAME --syscalls a,b ...` (faults/syscall).
void AddInjectSyscall(CLI::App* inject, GlobalOptions& g);
// `faultline inject time offset --managed NAME --offset -60s ...` (faults/time).
void AddInjectTime(CLI::App* inject, GlobalOptions& g);

}  // namespace faultline::cli
