#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace faultline::faults {

// One line of a daemon's log: "2026-12-03T13:05:01.123Z faultline-agent: msg". The timestamp
// (UTC, milliseconds) is there because a log read outside journald (`kubectl logs`, a lab's
// agent.log) has no other; the program name because several daemons share a terminal or file.
std::string FormatLogLine(std::string_view program, std::string_view msg,
                          std::chrono::system_clock::time_point at);

// Writes FormatLogLine(now) to stderr in one write(2), so lines from several threads (the
// agent's fault threads, the controller's runs and election) never interleave mid-line.
void LogLine(std::string_view program, std::string_view msg);

}  // namespace faultline::faults
