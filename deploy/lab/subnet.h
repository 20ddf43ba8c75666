#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faultline::lab {

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

// The /24 a lab uses: the first one of 10.213.0.0/16 (then 10.214, 10.215), starting at a slot
// derived from the lab's name, that overlaps none of `taken` (host routes and addresses, other
// labs). Default routes (length 0) do not count: they cover everything. nullopt if none is free.
std::optional<Prefix> ChooseLabSubnet(const std::vector<Prefix>& taken, std::string_view lab_name);

// Addresses within a lab's /24: the bridge (host side) is .1, member eN is .(10+N).
inline uint32_t BridgeAddress(const Prefix& subnet) { return subnet.net + 1; }
inline uint32_t MemberAddress(const Prefix& subnet, int member) { return subnet.net + 10 + member; }

}  // namespace faultline::lab
