#include "deploy/lab/subnet.h"

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

}  // namespace faultline::lab
