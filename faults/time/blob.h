#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace faultline::faults::time {

// The code placed in a target's vDSO (its unused tail) while a time fault is armed: fake
// clock_gettime/gettimeofday/time entry points that read the real clock and add an offset to
// the clocks in a mask. The vDSO's own entry points jump here (a 5-byte `jmp rel32`).
//
// Layout of the blob (offsets from its start):
//   0  "FLTIME01" magic: how the sweep recognises a vDSO left patched by a dead agent
//   8  offset seconds (int64)   16  offset nanoseconds (0..999999999)   24  clock-id bit mask
//   32 "real clock_gettime": 32 bytes filled at apply time, either the displaced first
//      instructions of the vDSO's clock_gettime followed by a jump back into it, or a raw
//      clock_gettime syscall when those instructions cannot be moved
//   then the three fake entry points.
struct BlobLayout {
  size_t size;
  size_t real_slot;  // offset of the 32-byte "real clock_gettime" slot
  size_t clock_gettime, gettimeofday, time;
};
const BlobLayout& Layout();

inline constexpr std::string_view kMagic = "FLTIME01";

struct BlobParams {
  int64_t offset_ns = 0;
  uint64_t clock_mask = 0;  // bit N set: clock id N is moved
  // Address the blob will live at, and the vDSO clock_gettime it calls.
  uint64_t blob_addr = 0;
  uint64_t real_clock_gettime = 0;
  // First bytes of that clock_gettime (at least 16).
  std::span<const uint8_t> real_prologue;
};

struct Blob {
  std::string bytes;
  // True when the real clock is read with a syscall (the prologue could not be displaced):
  // every read costs a syscall instead of a vDSO call.
  bool real_via_syscall = false;
};

Blob BuildBlob(const BlobParams& p);

// Length (>= 5) of the whole instructions at the start of `code` that can run from another
// address unchanged (push, mov/and/sub on registers, endbr64), or nullopt if an instruction
// there is RIP-relative, a branch, or one this decoder does not know.
std::optional<size_t> DisplaceableLength(std::span<const uint8_t> code);

// `jmp rel32` at `from` to `to` (5 bytes).
std::string Jump(uint64_t from, uint64_t to);

}  // namespace faultline::faults::time
