#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace faultline::faults::stress {

// A memory size as people write it: bytes, or a share of the host's memory.
struct MemorySize {
  uint64_t bytes = 0;
  double percent = 0;  // > 0: a percent of MemTotal, `bytes` unused
};

// "512MiB", "1.5GiB", "100MB", "4096", "25%". KiB/MiB/GiB/TiB, Kubernetes' Ki/Mi/Gi and
// stress-ng's single letters (K/M/G/T) are binary; kB/MB/GB/TB are decimal.
// Returns nullopt and sets *why on bad input.
std::optional<MemorySize> ParseSize(std::string_view text, std::string* why = nullptr);

// "512MiB", "1.50GiB": for descriptions.
std::string FormatBytes(uint64_t bytes);

// /proc/meminfo, in bytes.
struct MemInfo {
  uint64_t total = 0;
  uint64_t available = 0;
};
MemInfo ReadMemInfo();

}  // namespace faultline::faults::stress
