#include "faults/time/spec.h"

#include <chrono>

#include "faults/core/duration.h"
#include "faults/process/spec.h"

namespace faultline::faults::time {

using v1::TimeFault;

uint64_t ClockMask(const TimeFault& f) {
  if (f.clocks_size() == 0) return kRealtimeMask;
  uint64_t m = 0;
  for (int c : f.clocks()) {
    m |= c == TimeFault::MONOTONIC  ? kMonotonicMask
         : c == TimeFault::BOOTTIME ? kBoottimeMask
         : c == TimeFault::REALTIME ? kRealtimeMask
                                    : 0;
  }
  return m;
}

FieldErrors ValidateSpec(const v1::FaultSpec& spec) {
  FieldErrors e;
  const auto& f = spec.time();
  if (f.action() != TimeFault::OFFSET) e.push_back({"time.action", "required: offset"});
  process::ValidateTarget(f.target(), "time.target", e);
  auto off = FromProto(f.offset());
  if (off.count() == 0) e.push_back({"time.offset", "required: a non-zero offset, e.g. -60s"});
  for (int i = 0; i < f.clocks_size(); ++i) {
    if (f.clocks(i) == TimeFault::CLOCK_UNSPECIFIED || !TimeFault::Clock_IsValid(f.clocks(i))) {
      e.push_back({"time.clocks[" + std::to_string(i) + "]",
                   "must be one of realtime, monotonic, boottime"});
    }
  }
  return e;
}

}  // namespace faultline::faults::time
