#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace faultline::sys {

// An IPv4 prefix, address in host byte order.
struct Prefix {
  uint32_t net = 0;
  int len = 0;
  bool operator==(const Prefix&) const = default;
};

std::string FormatIpv4(uint32_t address);
std::optional<uint32_t> ParseIpv4(std::string_view text);
// "10.213.7.0/24"
std::string FormatPrefix(const Prefix& p);
std::optional<Prefix> ParsePrefix(std::string_view text);
bool Overlaps(const Prefix& a, const Prefix& b);

}  // namespace faultline::sys
