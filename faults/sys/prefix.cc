#include "faults/sys/prefix.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace faultline::sys {

std::string FormatIpv4(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." +
         std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
}

std::optional<uint32_t> ParseIpv4(std::string_view text) {
  in_addr a;
  std::string s(text);
  if (::inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::string FormatPrefix(const Prefix& p) {
  return FormatIpv4(p.net) + "/" + std::to_string(p.len);
}

std::optional<Prefix> ParsePrefix(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = ParseIpv4(text.substr(0, slash));
  int len = -1;
  auto rest = text.substr(slash + 1);
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), len);
  if (!addr || ec != std::errc() || end != rest.data() + rest.size() || len < 0 || len > 32) {
    return std::nullopt;
  }
  return Prefix{*addr, len};
}

bool Overlaps(const Prefix& a, const Prefix& b) {
  int len = std::min(a.len, b.len);
  uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  return (a.net & mask) == (b.net & mask);
}

}  // namespace faultline::sys

namespace faultline::sys {

int IpAddr::family() const { return v6 ? AF_INET6 : AF_INET; }

IpAddr IpAddr::V4(uint32_t host_order) {
  IpAddr a;
  const uint32_t be = htonl(host_order);
  memcpy(a.bytes.data(), &be, 4);
  return a;
}

uint32_t IpAddr::v4() const { return v6 ? 0 : Word(0); }

uint32_t IpAddr::Word(int i) const {
  uint32_t be = 0;
  memcpy(&be, bytes.data() + 4 * i, 4);
  return ntohl(be);
}

std::optional<IpAddr> ParseIp(std::string_view text) {
  IpAddr a;
  std::string s(text);
  if (s.find(':') != std::string::npos) {
    a.v6 = true;
    if (::inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
    return a;
  }
  if (::inet_pton(AF_INET, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
  return a;
}

std::string FormatIp(const IpAddr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(a.family(), a.bytes.data(), buf, sizeof buf);
  return buf;
}

IpAddr MaskIp(const IpAddr& a, int len) {
  IpAddr out = a;
  for (int i = 0; i < 16; ++i) {
    const int keep = std::clamp(len - 8 * i, 0, 8);
    out.bytes[i] &= static_cast<uint8_t>(0xff00 >> keep);
  }
  return out;
}

}  // namespace faultline::sys
