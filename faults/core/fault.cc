#include "faults/core/fault.h"

namespace faultline::faults {

std::string FamilyOf(const v1::FaultSpec& spec) {
  switch (spec.fault_case()) {
    case v1::FaultSpec::kProcess:
      return "process";
    case v1::FaultSpec::kIo:
      return "io";
    case v1::FaultSpec::kNet:
      return "net";
    case v1::FaultSpec::kStress:
      return "stress";
    case v1::FaultSpec::kSyscall:
      return "syscall";
    case v1::FaultSpec::kTime:
      return "time";
    case v1::FaultSpec::FAULT_NOT_SET:
      break;
  }
  return "";
}

}  // namespace faultline::faults
