#pragma once

#include "faults/core/registry.h"

namespace faultline::faults::syscalls {

// Registers the "syscall" family: errno and/or delay on chosen syscalls of a managed process
// started under faultline-seccomp-exec (see launch.h and interceptor.h).
void RegisterSyscallFaults(Registry& registry);

}  // namespace faultline::faults::syscalls
