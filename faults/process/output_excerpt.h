#pragma once

// What a supervised process wrote before it ended, read back from its log file: the first lines
// that say why it died (a Go panic or fatal error, etcd's panic/fatal log records) and the last
// bytes it wrote. Bounded, so a process that logged gigabytes costs a bounded read.

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace faultline::faults::process {

struct OutputExcerpt {
  std::vector<std::string> fatal_lines;  // in order, the first few, each cut to 512 bytes
  std::string tail;                      // the last bytes written (from a line start)
  size_t bytes = 0;                      // bytes the process wrote (from `from` to the end)
  bool scanned_all = true;               // false: the middle of a very large output was not scanned
};

// A line that says the process is dying: Go's "panic: ", "fatal error: " and fatal signal
// headers ("SIGSEGV: segmentation violation"), zap records at level panic/fatal (JSON or
// console), capnslog's critical records (" C | ").
bool IsFatalLine(std::string_view line);

// Reads `path` from offset `from` to its end. A missing file gives an empty excerpt.
OutputExcerpt ReadOutputExcerpt(const std::string& path, off_t from, size_t tail_bytes = 4096,
                                size_t max_fatal_lines = 8);

}  // namespace faultline::faults::process
