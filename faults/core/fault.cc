#include "faults/core/fault.h"

#include <google/protobuf/descriptor.h>

namespace faultline::faults {

// The oneof's field name is the family name, so a family added to fault.proto is named here
// without a change.
std::string FamilyOf(const v1::FaultSpec& spec) {
  const auto* oneof = v1::FaultSpec::descriptor()->FindOneofByName("fault");
  const auto* field = spec.GetReflection()->GetOneofFieldDescriptor(spec, oneof);
  return field == nullptr ? "" : field->name();
}

}  // namespace faultline::faults
