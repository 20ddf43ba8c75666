#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "faults/sys/error.h"

namespace faultline::faults {

// One problem with a fault spec, named by its field path (e.g. "process.signal").
struct FieldError {
  std::string field;
  std::string reason;
  bool operator==(const FieldError&) const = default;
};
using FieldErrors = std::vector<FieldError>;

// "field: reason; field: reason" — one line, every error at once.
std::string FormatFieldErrors(const FieldErrors& errors);

// A spec that failed validation. Thrown before anything is changed.
class ValidationError : public std::runtime_error {
 public:
  explicit ValidationError(FieldErrors errors)
      : std::runtime_error(FormatFieldErrors(errors)), errors_(std::move(errors)) {}
  ValidationError(std::string field, std::string reason)
      : ValidationError(FieldErrors{{std::move(field), std::move(reason)}}) {}
  const FieldErrors& errors() const { return errors_; }

 private:
  FieldErrors errors_;
};

// apply() or revert() could not do its job; the message says what and why.
using FaultError = sys::Error;
using sys::ThrowErrno;

}  // namespace faultline::faults
