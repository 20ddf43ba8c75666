#include "faults/net/addr.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace faultline::faults::net {
namespace {

void Set(std::string* why, std::string text) {
  if (why) *why = std::move(text);
}

// Splits "12.5mbit" into 12.5 and "mbit". Returns false if there is no leading number.
bool SplitNumber(std::string_view text, double* value, std::string* unit) {
  size_t i = 0;
  while (i < text.size() && (isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return false;
  auto [p, ec] = std::from_chars(text.data(), text.data() + i, *value);
  if (ec != std::errc() || p != text.data() + i) return false;
  unit->clear();
  for (char c : text.substr(i)) unit->push_back(static_cast<char>(tolower(c)));
  return std::isfinite(*value);
}

}  // namespace

uint32_t Cidr::MaskWord(int i) const {
  const int keep = std::clamp(prefix - 32 * i, 0, 32);
  return keep == 0 ? 0 : ~uint32_t{0} << (32 - keep);
}

std::array<uint8_t, 16> Cidr::MaskBytes() const {
  std::array<uint8_t, 16> m{};
  m.fill(0xff);
  sys::IpAddr all;
  all.v6 = true;
  all.bytes = m;
  return sys::MaskIp(all, prefix).bytes;
}

bool Cidr::Contains(const sys::IpAddr& a) const {
  return a.v6 == addr.v6 && sys::MaskIp(a, prefix) == addr;
}

bool Cidr::Overlaps(const Cidr& o) const {
  if (v6() != o.v6()) return false;
  const int p = std::min(prefix, o.prefix);
  return sys::MaskIp(addr, p) == sys::MaskIp(o.addr, p);
}

std::string Cidr::ToString() const { return sys::FormatIp(addr) + "/" + std::to_string(prefix); }

namespace {

// "scheme://host:port/path" -> "host:port" (the authority), a CIDR's slash kept.
std::string_view Authority(std::string_view endpoint) {
  if (auto p = endpoint.find("://"); p != std::string_view::npos) {
    endpoint.remove_prefix(p + 3);
    if (auto slash = endpoint.find('/'); slash != std::string_view::npos)
      endpoint = endpoint.substr(0, slash);
  }
  return endpoint;
}

// Splits an authority into host and port text ("" when there is no port). A bare IPv6 address
// or CIDR (more than one colon, no brackets) has no port.
void SplitHostPort(std::string_view a, std::string_view* host, std::string_view* port) {
  *port = {};
  if (a.starts_with('[')) {
    auto close = a.find(']');
    if (close == std::string_view::npos) {
      *host = a;
      return;
    }
    *host = a.substr(1, close - 1);
    if (close + 1 < a.size() && a[close + 1] == ':') *port = a.substr(close + 2);
  } else {
    const auto colon = a.rfind(':');
    if (colon == std::string_view::npos || a.find(':') != colon) {
      *host = a;
      return;
    }
    *host = a.substr(0, colon);
    *port = a.substr(colon + 1);
  }
  // "10.0.0.1:2379/path" (no scheme): the path is not part of the port.
  if (auto slash = port->find('/'); slash != std::string_view::npos) *port = port->substr(0, slash);
}

}  // namespace

std::string EndpointHost(std::string_view endpoint) {
  std::string_view host, port;
  SplitHostPort(Authority(endpoint), &host, &port);
  return std::string(host);
}

std::optional<uint16_t> EndpointPort(std::string_view endpoint) {
  std::string_view host, p;
  SplitHostPort(Authority(endpoint), &host, &p);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (p.empty() || ec != std::errc() || end != p.data() + p.size() || port > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(port);
}

std::optional<Cidr> EndpointCidr(std::string_view endpoint, std::string* why) {
  return ParseCidr(EndpointHost(endpoint), why);
}

std::optional<Cidr> ParseCidr(std::string_view text, std::string* why) {
  Cidr c;
  std::string_view addr = text;
  std::string_view len_text;
  const bool has_len = text.find('/') != std::string_view::npos;
  if (has_len) {
    addr = text.substr(0, text.find('/'));
    len_text = text.substr(text.find('/') + 1);
  }
  if (addr.starts_with('[') && addr.ends_with(']') && addr.size() > 2)
    addr = addr.substr(1, addr.size() - 2);
  auto a = sys::ParseIp(addr);
  if (!a) {
    Set(why, "not an IPv4 or IPv6 address or CIDR: \"" + std::string(text) + "\"");
    return std::nullopt;
  }
  c.addr = *a;
  c.prefix = a->bits();
  if (has_len) {
    auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), c.prefix);
    if (len_text.empty() || ec != std::errc() || end != len_text.data() + len_text.size() ||
        c.prefix < 0 || c.prefix > a->bits()) {
      Set(why, std::string("prefix length must be 0..") + std::to_string(a->bits()) +
                   (a->v6 ? " for IPv6" : " for IPv4") + " in \"" + std::string(text) + "\"");
      return std::nullopt;
    }
  }
  const sys::IpAddr net = sys::MaskIp(c.addr, c.prefix);
  if (net != c.addr) {
    Set(why, "host bits set in \"" + std::string(text) + "\" (did you mean " + sys::FormatIp(net) +
                 "/" + std::to_string(c.prefix) + "?)");
    return std::nullopt;
  }
  return c;
}

std::optional<PortRange> ParsePortRange(std::string_view text, std::string* why) {
  auto parse = [&](std::string_view s, uint16_t* out) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 1 || v > 65535)
      return false;
    *out = static_cast<uint16_t>(v);
    return true;
  };
  PortRange r;
  auto dash = text.find('-');
  bool ok = dash == std::string_view::npos
                ? parse(text, &r.first) && (r.last = r.first, true)
                : parse(text.substr(0, dash), &r.first) && parse(text.substr(dash + 1), &r.last);
  if (!ok) {
    Set(why, "port must be 1..65535 or a range like 2379-2380: \"" + std::string(text) + "\"");
    return std::nullopt;
  }
  if (r.first > r.last) {
    Set(why, "range start is above its end: \"" + std::string(text) + "\"");
    return std::nullopt;
  }
  return r;
}

std::vector<MaskedPort> PortRangeToMasks(PortRange r) {
  std::vector<MaskedPort> out;
  uint32_t lo = r.first;
  const uint32_t hi = r.last;
  while (lo <= hi) {
    // Largest aligned block starting at lo that stays within hi.
    uint32_t size = lo == 0 ? 0x10000 : (lo & -lo);
    while (lo + size - 1 > hi) size >>= 1;
    out.push_back({static_cast<uint16_t>(lo), static_cast<uint16_t>(~(size - 1) & 0xffff)});
    lo += size;
  }
  return out;
}

std::optional<uint64_t> ParseRate(std::string_view text, std::string* why) {
  double v = 0;
  std::string unit;
  if (!SplitNumber(text, &v, &unit)) {
    Set(why, "not a rate: \"" + std::string(text) + "\" (use e.g. 1mbit, 500kbit, 2mbps)");
    return std::nullopt;
  }
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1 / 8.0},         {"bit", 1 / 8.0},        {"kbit", 1e3 / 8},
      {"mbit", 1e6 / 8},     {"gbit", 1e9 / 8},       {"bps", 1},
      {"kbps", 1e3},         {"mbps", 1e6},           {"gbps", 1e9},
      {"kibit", 1024 / 8.0}, {"mibit", 1048576 / 8.0}};
  for (auto& [name, factor] : kUnits) {
    if (unit == name) {
      double bytes = v * factor;
      if (bytes < 1 || bytes > 1e12) {
        Set(why, "rate out of range (8bit..8tbit): \"" + std::string(text) + "\"");
        return std::nullopt;
      }
      return static_cast<uint64_t>(bytes);
    }
  }
  Set(why, "unknown rate unit \"" + unit + "\" (use bit, kbit, mbit, gbit, bps, kbps, mbps, gbps)");
  return std::nullopt;
}

std::optional<uint64_t> ParseSize(std::string_view text, std::string* why) {
  double v = 0;
  std::string unit;
  if (!SplitNumber(text, &v, &unit)) {
    Set(why, "not a size: \"" + std::string(text) + "\" (use e.g. 1500, 32kb, 1mb)");
    return std::nullopt;
  }
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1},        {"b", 1},        {"k", 1024},          {"kb", 1024},
      {"m", 1048576}, {"mb", 1048576}, {"kbit", 1024 / 8.0}, {"mbit", 1048576 / 8.0}};
  for (auto& [name, factor] : kUnits) {
    if (unit == name) {
      double bytes = v * factor;
      if (bytes < 1 || bytes > 4e9) {
        Set(why, "size out of range (1 byte..4 GB): \"" + std::string(text) + "\"");
        return std::nullopt;
      }
      return static_cast<uint64_t>(bytes);
    }
  }
  Set(why, "unknown size unit \"" + unit + "\" (use b, kb, mb, kbit, mbit)");
  return std::nullopt;
}

}  // namespace faultline::faults::net
