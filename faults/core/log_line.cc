#include "faults/core/log_line.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace faultline::faults {

std::string FormatLogLine(std::string_view program, std::string_view msg,
                          std::chrono::system_clock::time_point at) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  ::gmtime_r(&secs, &utc);
  char stamp[96];  // room for any int the compiler can imagine in each field
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms % 1000));
  std::string line = stamp;
  line.append(program).append(": ").append(msg);
  if (line.empty() || line.back() != '\n') line += '\n';
  return line;
}

void LogLine(std::string_view program, std::string_view msg) {
  const std::string line = FormatLogLine(program, msg, std::chrono::system_clock::now());
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) return;  // nowhere to log to: nothing better to do
    done += static_cast<size_t>(n);
  }
}

}  // namespace faultline::faults
