#include "deploy/lab/subnet.h"

#include <string>

#include "faults/core/rng.h"

namespace faultline::lab {

std::optional<Prefix> ChooseLabSubnet(const std::vector<Prefix>& taken, std::string_view lab_name) {
  // Slots 1..254 of the third octet; starting from the name's slot keeps a lab's addresses
  // stable across `down`/`up` when nothing else changed.
  uint32_t start = faults::StableHash(lab_name) % 254;
  for (uint32_t second : {213u, 214u, 215u}) {
    for (uint32_t i = 0; i < 254; ++i) {
      uint32_t third = 1 + (start + i) % 254;
      Prefix cand{(10u << 24) | (second << 16) | (third << 8), 24};
      bool free = true;
      for (const auto& t : taken) {
        if (t.len > 0 && Overlaps(cand, t)) {
          free = false;
          break;
        }
      }
      if (free) return cand;
    }
  }
  return std::nullopt;
}

namespace {

// The bytes of `v` written in decimal, read back as a hex group (213 -> 0x0213).
uint16_t DecimalAsHex(uint32_t v) {
  return static_cast<uint16_t>(std::stoul(std::to_string(v), nullptr, 16));
}

sys::IpAddr WithLastGroup(const Prefix& subnet, uint16_t last) {
  sys::IpAddr a;
  a.v6 = true;
  const uint16_t groups[] = {0xfd00, 0xfa17, DecimalAsHex((subnet.net >> 16) & 0xff),
                             DecimalAsHex((subnet.net >> 8) & 0xff)};
  for (int i = 0; i < 4; ++i) {
    a.bytes[2 * i] = static_cast<uint8_t>(groups[i] >> 8);
    a.bytes[2 * i + 1] = static_cast<uint8_t>(groups[i] & 0xff);
  }
  a.bytes[14] = static_cast<uint8_t>(last >> 8);
  a.bytes[15] = static_cast<uint8_t>(last & 0xff);
  return a;
}

}  // namespace

sys::IpAddr Ipv6LabNet(const Prefix& subnet) { return WithLastGroup(subnet, 0); }
sys::IpAddr Ipv6BridgeAddress(const Prefix& subnet) { return WithLastGroup(subnet, 1); }
sys::IpAddr Ipv6MemberAddress(const Prefix& subnet, int member) {
  return WithLastGroup(subnet, DecimalAsHex(static_cast<uint32_t>(10 + member)));
}

}  // namespace faultline::lab
