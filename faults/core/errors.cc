#include "faults/core/errors.h"

#include <cerrno>
#include <cstring>

namespace faultline::faults {

std::string FormatFieldErrors(const FieldErrors& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out += "; ";
    out += e.field.empty() ? e.reason : e.field + ": " + e.reason;
  }
  return out;
}

void ThrowErrno(const std::string& what, int err) {
  throw FaultError(what + ": " + std::strerror(err));
}

void ThrowErrno(const std::string& what) { ThrowErrno(what, errno); }

}  // namespace faultline::faults
