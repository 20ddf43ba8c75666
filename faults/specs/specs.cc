#include "faults/specs/specs.h"

#include <google/protobuf/descriptor.h>

#include "faults/core/duration.h"
#include "faults/core/fault.h"
#include "faults/core/names.h"
#include "faults/io/spec.h"
#include "faults/net/spec.h"
#include "faults/process/spec.h"
#include "faults/stress/spec.h"
#include "faults/syscall/spec.h"
#include "faults/time/spec.h"

namespace faultline::faults {

FieldErrors ValidateSpec(const v1::FaultSpec& spec) {
  switch (spec.fault_case()) {
    case v1::FaultSpec::kProcess:
      return process::ValidateSpec(spec);
    case v1::FaultSpec::kIo:
      return io::ValidateSpec(spec);
    case v1::FaultSpec::kNet:
      return net::ValidateSpec(spec);
    case v1::FaultSpec::kStress:
      return stress::ValidateSpec(spec);
    case v1::FaultSpec::kSyscall:
      return syscalls::ValidateSpec(spec);
    case v1::FaultSpec::kTime:
      return time::ValidateSpec(spec);
    default:
      return {};
  }
}

bool OneShot(const v1::FaultSpec& spec) {
  // The io family's crash command is over once the crash is (its agent-side fault says so too).
  if (spec.has_io()) return spec.io().action() == v1::IoFault::CRASH;
  return spec.has_process() && process::OneShot(spec.process());
}

std::chrono::nanoseconds ImpliedDuration(const v1::FaultSpec& spec) {
  if (spec.has_process() && spec.process().action() == v1::ProcessFault::KILL) {
    return FromProto(spec.process().restart_after());
  }
  return std::chrono::nanoseconds(0);
}

bool NeedsDuration(const v1::FaultSpec& spec) {
  if (OneShot(spec) || ImpliedDuration(spec).count() > 0) return false;
  return !(spec.has_process() && spec.process().action() == v1::ProcessFault::REJOIN);
}

std::string KindOf(const v1::FaultSpec& spec) {
  const std::string family = FamilyOf(spec);
  if (family.empty()) return "unknown";
  const auto* field = spec.GetDescriptor()->FindFieldByName(family);
  if (field == nullptr || field->message_type() == nullptr) return family;
  const auto& msg = spec.GetReflection()->GetMessage(spec, field);
  const auto* action = msg.GetDescriptor()->FindFieldByName("action");
  if (action == nullptr || action->enum_type() == nullptr) return family;
  return family + "/" +
         EnumValueName(action->enum_type(), msg.GetReflection()->GetEnumValue(msg, action));
}

}  // namespace faultline::faults
