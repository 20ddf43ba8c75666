#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "faultline/v1/process.pb.h"
#include "faults/core/errors.h"
#include "faults/core/fault.h"
#include "faults/process/spec.h"

namespace faultline::faults::process {

// One process a fault acts on; `start_time` tells it apart from a later process reusing the pid.
struct Target {
  pid_t pid = 0;
  uint64_t start_time = 0;
  std::string comm;
};

// The processes `t` names on this host, never the agent itself, pid 1 or kernel threads; with
// mode ONE, one of them picked by `seed`. `allow_stopped_managed`: a managed process that is
// not running yields no target instead of an error (a restart starts it). Throws FaultError
// naming `field` when nothing matches.
std::vector<Target> ResolveTargets(const v1::ProcessTarget& t, uint64_t seed,
                                   const FaultContext& ctx, const std::string& field,
                                   bool allow_stopped_managed = false);

}  // namespace faultline::faults::process
