#pragma once

#include <stdexcept>
#include <string>

namespace faultline::sys {

// A kernel object could not be made, changed or removed; the message says what and why.
// (faults::FaultError is this type, so the fault families and the plumbing throw one kind.)
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A system call failed: message is "what: strerror(err)".
[[noreturn]] void ThrowErrno(const std::string& what, int err);
[[noreturn]] void ThrowErrno(const std::string& what);

}  // namespace faultline::sys
