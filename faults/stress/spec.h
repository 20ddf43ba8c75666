#pragma once

// The "stress" family's host-free surface: validation at submit time and action names. Limits
// that depend on the host (its CPU count, its RAM) are the factory's, checked on the agent.

#include <string>

#include "faultline/v1/fault.pb.h"
#include "faults/core/errors.h"

namespace faultline::faults::stress {

std::string ActionName(v1::StressFault::Action a);

// Every problem with spec.stress() that needs no host, at once ("stress.load").
FieldErrors ValidateSpec(const v1::FaultSpec& spec);

}  // namespace faultline::faults::stress
