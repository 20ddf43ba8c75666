#pragma once

// The "io" family's host-free surface: what experiments/, the controller and the CLI use without
// an overlay or FUSE (validation at submit time, action names, the chaos-mesh volume mapping).

#include <string>
#include <vector>

#include "faultline/v1/fault.pb.h"
#include "faults/core/errors.h"

namespace faultline::faults::io {

// The action's name as the CLI and fault kinds spell it ("latency", "enospc-after").
std::string ActionName(v1::IoFault::Action a);

// Every problem with spec.io() that needs no host, at once; paths relative to the spec root
// ("io.delay").
FieldErrors ValidateSpec(const v1::FaultSpec& spec);

// chaos-mesh's volumePath names a volume inside a pod; on an agent it is one of the overlays the
// agent has mounted (`overlays`). When io->mount() is not one of them and there is exactly one,
// the fault goes to that one and the note for the run's timeline says so (" (volume X is this
// agent's overlay Y)"); otherwise nothing changes ("" returned) and the agent refuses the fault
// with its reason.
std::string MapVolume(const std::vector<std::string>& overlays, v1::IoFault* io);

}  // namespace faultline::faults::io
