#pragma once

#include <array>
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

// An IPv4 or IPv6 address, bytes in network order (an IPv4 address uses the first 4).
struct IpAddr {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};

  int bits() const { return v6 ? 128 : 32; }
  size_t size() const { return v6 ? 16 : 4; }
  int family() const;  // AF_INET or AF_INET6
  static IpAddr V4(uint32_t host_order);
  // The IPv4 address in host order (0 for IPv6).
  uint32_t v4() const;
  // The i-th 32-bit word in host order (i < size()/4): what u32 filters compare.
  uint32_t Word(int i) const;
  bool operator==(const IpAddr&) const = default;
};

// Dotted quad or any RFC 4291 text form ("fd00:fa17::1", "::ffff:10.0.0.1"); no brackets, no
// zone ("%eth0").
std::optional<IpAddr> ParseIp(std::string_view text);
// Dotted quad, or the RFC 5952 form of an IPv6 address.
std::string FormatIp(const IpAddr& a);
// `a` with every bit past the first `len` cleared.
IpAddr MaskIp(const IpAddr& a, int len);

}  // namespace faultline::sys
