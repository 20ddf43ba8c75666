#pragma once

// The "syscall" family's host-free surface: syscall and errno names and validation at submit
// time. Whether the managed process intercepts the syscalls is the agent's question (Prepare).

#include <optional>
#include <string_view>

#include "faultline/v1/fault.pb.h"
#include "faults/core/errors.h"

namespace faultline::faults::syscalls {

// Syscall number on this architecture, or nullopt ("fdatasync" -> 75 on x86_64).
std::optional<int> ResolveSyscall(std::string_view name);
// "EIO", "ENOSPC" or "5" -> the errno value; nullopt if unknown.
std::optional<int> ParseErrno(std::string_view text);
// Syscalls that the loader needs after its filter is in place, or that cannot meaningfully be
// held (the process could never exec or exit): never intercepted.
bool NeverIntercepted(std::string_view name);

// Every problem with spec.syscall() that needs no host, at once ("syscall.error").
FieldErrors ValidateSpec(const v1::FaultSpec& spec);

}  // namespace faultline::faults::syscalls
