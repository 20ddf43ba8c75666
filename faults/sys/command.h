#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace faultline::sys {

// A finished command: exit status (-1 if killed after the timeout) and what it printed.
struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace faultline::sys
