#pragma once

// The "time" family's host-free surface: what experiments/ and the controller check at submit
// time. The agent adds its host checks (its --time-max-offset bound, the target itself).

#include <cstdint>

#include "faultline/v1/fault.pb.h"
#include "faults/core/errors.h"

namespace faultline::faults::time {

// Every problem with spec.time() that needs no host, at once ("time.offset").
FieldErrors ValidateSpec(const v1::FaultSpec& spec);

// The clock-id bit mask a spec moves (REALTIME when it names none).
uint64_t ClockMask(const v1::TimeFault& f);

// Clock-id bit masks of the clock groups TimeFault names.
inline constexpr uint64_t kRealtimeMask =
    (1u << 0) | (1u << 5) | (1u << 8) | (1u << 11);  // REALTIME, _COARSE, _ALARM, TAI
inline constexpr uint64_t kMonotonicMask = (1u << 1) | (1u << 4) | (1u << 6);  // +RAW, +COARSE
inline constexpr uint64_t kBoottimeMask = (1u << 7) | (1u << 9);               // +_ALARM

}  // namespace faultline::faults::time
