#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faults/sys/prefix.h"

namespace faultline::faults::net {

// An IPv4 or IPv6 prefix. Bits outside the prefix are zero. Prefixes of different families
// never overlap and never match each other's packets.
struct Cidr {
  sys::IpAddr addr;
  int prefix = 32;

  bool v6() const { return addr.v6; }
  // The i-th 32-bit word of the address and of the mask, host order (i < 1 for IPv4, < 4 for
  // IPv6): what u32 keys compare.
  uint32_t Word(int i) const { return addr.Word(i); }
  uint32_t MaskWord(int i) const;
  // The mask as bytes in network order (addr.size() of them used).
  std::array<uint8_t, 16> MaskBytes() const;
  bool Contains(const sys::IpAddr& a) const;
  // True if the two prefixes share at least one address.
  bool Overlaps(const Cidr& o) const;
  std::string ToString() const;
  bool operator==(const Cidr&) const = default;
};

// "10.1.0.0/16", "10.1.0.2" (/32), "fd00:fa17::/64" or "fd00:fa17::2" (/128). Host bits set
// ("10.1.0.2/16") are refused: they usually mean a typo, and silently widening a fault's reach
// is worse than an error. Brackets ("[fd00::1]") are accepted around a bare IPv6 address.
std::optional<Cidr> ParseCidr(std::string_view text, std::string* why = nullptr);
// Dotted quads in host byte order: faults/sys's.
using sys::FormatIpv4;
using sys::ParseIpv4;

// The host of an endpoint as people write one: "10.0.0.1:2379", "http://10.0.0.1:2379",
// "[fd00::1]:2379", "http://[fd00::1]:2379", "10.0.0.1", "fd00::1" or "10.0.0.0/24" ->
// "10.0.0.1" / "fd00::1" (brackets removed) or the CIDR text. Nothing is resolved.
std::string EndpointHost(std::string_view endpoint);
// The port of "host:port", "[v6]:port" or "scheme://host:port", or nullopt when there is none.
std::optional<uint16_t> EndpointPort(std::string_view endpoint);
// The addresses an endpoint names, for exemptions and peers: its host as a CIDR (/32 or /128
// unless written with a prefix). nullopt with *why when the host is not an address (a name).
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
