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

}  // namespace faultline::lab
