#pragma once

#include <string>

namespace faultline::faults {

// True if the running kernel's release is at least major.minor (uname).
bool KernelAtLeast(int major, int minor);

// The whole file, or std::runtime_error naming the path.
std::string ReadWholeFile(const std::string& path);

}  // namespace faultline::faults
