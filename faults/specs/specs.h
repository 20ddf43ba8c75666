#pragma once

// Every fault family's host-free surface behind one call, for the layers that check specs without
// serving them: experiments/ (loading), the controller (submit time) and the CLI. Each family
// owns its rules in faults/<family>/spec.h; this only dispatches on the spec's family.

#include <chrono>
#include <string>

#include "faultline/v1/fault.pb.h"
#include "faults/core/errors.h"

namespace faultline::faults {

// Every problem of the spec's family that needs no host, paths relative to the spec root
// ("io.delay"). A spec naming no family has none here: whether one is required is the caller's.
FieldErrors ValidateSpec(const v1::FaultSpec& spec);

// True when the fault's whole effect happens at once (a signal, a kill, a restart): it needs no
// duration and holds no lease. The family's rule (faults/process/spec.h OneShot).
bool OneShot(const v1::FaultSpec& spec);

// How long the fault lasts when its step says nothing: a kill with restart_after ends with the
// restart. Zero when the family implies no length.
std::chrono::nanoseconds ImpliedDuration(const v1::FaultSpec& spec);

// Whether a step with this fault must say how long it lasts: not when it is one-shot, not when
// its family implies a length, and not for a rejoin, which ends when the run has its member back
// in the cluster (a duration only keeps it down longer).
bool NeedsDuration(const v1::FaultSpec& spec);

// "family/action" as the agent reports a fault's kind ("io/latency", "process/kill"); the family
// alone when it has no action field; "unknown" when no family is set.
std::string KindOf(const v1::FaultSpec& spec);

}  // namespace faultline::faults
