#pragma once

// The "process" family's host-free surface: validation at submit time, action names, and the
// one-shot rule that experiments/ (zero durations) and the agent (no lease) both follow.

#include <string>

#include "faultline/v1/fault.pb.h"
#include "faults/core/errors.h"

namespace faultline::faults::process {

std::string ActionName(v1::ProcessFault::Action a);

// True when the whole effect happens at once (a signal, a kill, a restart): nothing stays applied,
// so a step needs no duration and the agent holds no lease. A pause lasts its duration; a kill
// with restart_after stays active until the restart (its revert) is due.
bool OneShot(const v1::ProcessFault& f);

// Pure checks of a ProcessTarget; `field` is its path, e.g. "time.target". Shared by every
// family that acts on processes.
void ValidateTarget(const v1::ProcessTarget& t, const std::string& field, FieldErrors& errors);

// "pid 42", "managed process etcd", ... for descriptions and errors.
std::string SelectorText(const v1::ProcessTarget& t);

// Every problem with spec.process() that needs no host, at once ("process.signal").
FieldErrors ValidateSpec(const v1::FaultSpec& spec);

}  // namespace faultline::faults::process
