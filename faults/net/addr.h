#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faults/sys/prefix.h"

namespace faultline::faults::net {

// An IPv4 prefix in host byte order. Bits outside the prefix are zero.
struct Cidr {
  uint32_t addr = 0;
  int prefix = 32;
  uint32_t mask() const { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }
  bool Contains(uint32_t a) const { return (a & mask()) == addr; }
  // True if the two prefixes share at least one address.
  bool Overlaps(const Cidr& o) const;
  std::string ToString() const;
  bool operator==(const Cidr&) const = default;
};

// "10.1.0.0/16" or "10.1.0.2" (/32). Host bits set ("10.1.0.2/16") are refused: they usually
// mean a typo, and silently widening a fault's reach is worse than an error.
std::optional<Cidr> ParseCidr(std::string_view text, std::string* why = nullptr);
// Dotted quads in host byte order: faults/sys's.
using sys::FormatIpv4;
using sys::ParseIpv4;

// The host of an endpoint as people write one: "10.0.0.1:2379", "http://10.0.0.1:2379",
// "10.0.0.1" or "10.0.0.0/24" -> "10.0.0.1" (or the CIDR text). Nothing is resolved.
std::string EndpointHost(std::string_view endpoint);
// The port of "host:port" or "scheme://host:port", or nullopt when there is none.
std::optional<uint16_t> EndpointPort(std::string_view endpoint);
// The addresses an endpoint names, for exemptions and peers: its host as a CIDR (/32 unless
// written with a prefix). nullopt with *why when the host is not IPv4 (a name, IPv6).
std::optional<Cidr> EndpointCidr(std::string_view endpoint, std::string* why = nullptr);

// Inclusive port range.
struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
  bool operator==(const PortRange&) const = default;
};

// "2380" or "2379-2380"; ports 1..65535, first <= last.
std::optional<PortRange> ParsePortRange(std::string_view text, std::string* why = nullptr);

// A port range as the smallest list of value/mask pairs (u32 can only match masks).
struct MaskedPort {
  uint16_t value;
  uint16_t mask;
  bool operator==(const MaskedPort&) const = default;
};
std::vector<MaskedPort> PortRangeToMasks(PortRange r);

// tc-style rate to bytes per second: "1mbit" = 125000, "10mbps" = 10000000, "800kbit", "1gbit",
// a bare number is bits per second.
std::optional<uint64_t> ParseRate(std::string_view text, std::string* why = nullptr);
// tc-style size to bytes: "1500", "32kb", "1mb", "10kbit".
std::optional<uint64_t> ParseSize(std::string_view text, std::string* why = nullptr);

}  // namespace faultline::faults::net
