#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faults/sys/prefix.h"

namespace faultline::lab {

using sys::FormatIpv4;
using sys::FormatPrefix;
using sys::Overlaps;
using sys::ParseIpv4;
using sys::ParsePrefix;
using sys::Prefix;

// The /24 a lab uses: the first one of 10.213.0.0/16 (then 10.214, 10.215), starting at a slot
// derived from the lab's name, that overlaps none of `taken` (host routes and addresses, other
// labs). Default routes (length 0) do not count: they cover everything. nullopt if none is free.
std::optional<Prefix> ChooseLabSubnet(const std::vector<Prefix>& taken, std::string_view lab_name);

// Addresses within a lab's /24: the bridge (host side) is .1, member eN is .(10+N).
inline uint32_t BridgeAddress(const Prefix& subnet) { return subnet.net + 1; }
inline uint32_t MemberAddress(const Prefix& subnet, int member) { return subnet.net + 10 + member; }

// An IPv6 lab's private ULA /64, derived from its IPv4 /24 so two labs never share one:
// 10.213.7.0/24 -> fd00:fa17:213:7::/64 (octets written as hex groups, so they read as the
// decimal ones). Its bridge is ::1 and member eN ::1N (e1 -> fd00:fa17:213:7::11), mirroring .1
// and .(10+N) of the /24.
inline constexpr int kLabIpv6PrefixLen = 64;
sys::IpAddr Ipv6LabNet(const Prefix& subnet);
sys::IpAddr Ipv6BridgeAddress(const Prefix& subnet);
sys::IpAddr Ipv6MemberAddress(const Prefix& subnet, int member);

}  // namespace faultline::lab
