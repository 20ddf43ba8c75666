#include "faults/core/errors.h"

namespace faultline::faults {

std::string FormatFieldErrors(const FieldErrors& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out += "; ";
    out += e.field.empty() ? e.reason : e.field + ": " + e.reason;
  }
  return out;
}

}  // namespace faultline::faults
