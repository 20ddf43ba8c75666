#include "faults/sys/prefix.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

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
