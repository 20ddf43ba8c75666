#include "faults/time/blob.h"

#include <cstring>

#include "faults/core/errors.h"

// The blob's machine code, assembled into the agent's read-only data (it never runs in the
// agent). Position-independent: every reference is relative to the blob itself, so its bytes
// can be copied to any address. System V calling convention; uses 32 bytes of the caller's
// stack at most, which Go's small vDSO stacks allow.
asm(R"(
  .pushsection .rodata.faultline_time_blob, "a"
  .balign 16
  .intel_syntax noprefix
faultline_time_blob_begin:
  .ascii "FLTIME01"
faultline_time_blob_off_sec:
  .quad 0
faultline_time_blob_off_nsec:
  .quad 0
faultline_time_blob_mask:
  .quad 0
faultline_time_blob_real:
  .fill 32, 1, 0xcc

# int clock_gettime(clockid_t id /*edi*/, struct timespec* ts /*rsi*/)
faultline_time_blob_clock_gettime:
  push rbx
  push r12
  push r13
  mov ebx, edi
  mov r12, rsi
  call faultline_time_blob_real
  test eax, eax
  jnz 9f
  cmp ebx, 64
  jae 9f
  bt qword ptr [rip + faultline_time_blob_mask], rbx
  jnc 9f
  mov rcx, [r12]
  mov rdx, [r12 + 8]
  add rcx, [rip + faultline_time_blob_off_sec]
  add rdx, [rip + faultline_time_blob_off_nsec]
  cmp rdx, 1000000000
  jl 1f
  sub rdx, 1000000000
  add rcx, 1
1:
  mov [r12], rcx
  mov [r12 + 8], rdx
9:
  pop r13
  pop r12
  pop rbx
  ret

# int gettimeofday(struct timeval* tv /*rdi*/, struct timezone* tz /*rsi*/)
faultline_time_blob_gettimeofday:
  push rbx
  push r12
  push r13
  sub rsp, 16
  mov r12, rdi
  mov r13, rsi
  test r13, r13
  jz 1f
  xor edi, edi
  mov rsi, r13
  mov eax, 96
  syscall
  test rax, rax
  jnz 8f
1:
  xor eax, eax
  test r12, r12
  jz 8f
  xor edi, edi
  mov rsi, rsp
  call faultline_time_blob_clock_gettime
  test eax, eax
  jnz 8f
  mov rax, [rsp]
  mov [r12], rax
  mov rax, [rsp + 8]
  xor edx, edx
  mov ecx, 1000
  div rcx
  mov [r12 + 8], rax
  xor eax, eax
8:
  add rsp, 16
  pop r13
  pop r12
  pop rbx
  ret

# time_t time(time_t* t /*rdi*/): the coarse wall clock, as the vDSO's own time() reads it.
faultline_time_blob_time:
  push rbx
  sub rsp, 16
  mov rbx, rdi
  mov edi, 5
  mov rsi, rsp
  call faultline_time_blob_clock_gettime
  mov rax, [rsp]
  test rbx, rbx
  jz 1f
  mov [rbx], rax
1:
  add rsp, 16
  pop rbx
  ret
faultline_time_blob_end:

  .att_syntax prefix
  .balign 8
faultline_time_blob_layout:
  .quad faultline_time_blob_end - faultline_time_blob_begin
  .quad faultline_time_blob_real - faultline_time_blob_begin
  .quad faultline_time_blob_clock_gettime - faultline_time_blob_begin
  .quad faultline_time_blob_gettimeofday - faultline_time_blob_begin
  .quad faultline_time_blob_time - faultline_time_blob_begin
  .globl faultline_time_blob_layout
  .globl faultline_time_blob_begin
  .hidden faultline_time_blob_layout
  .hidden faultline_time_blob_begin
  .popsection
)");

extern "C" const unsigned char faultline_time_blob_begin[];
extern "C" const uint64_t faultline_time_blob_layout[5];

namespace faultline::faults::time {
namespace {

constexpr size_t kOffSec = 8, kOffNsec = 16, kMask = 24, kRealSlotSize = 32;

void PutU64(std::string& s, size_t at, uint64_t v) { std::memcpy(s.data() + at, &v, 8); }

}  // namespace

const BlobLayout& Layout() {
  static const BlobLayout l{faultline_time_blob_layout[0], faultline_time_blob_layout[1],
                            faultline_time_blob_layout[2], faultline_time_blob_layout[3],
                            faultline_time_blob_layout[4]};
  return l;
}

std::optional<size_t> DisplaceableLength(std::span<const uint8_t> code) {
  size_t i = 0;
  while (i < 5) {
    if (i + 8 > code.size()) return std::nullopt;  // the longest form below is 7 bytes
    const uint8_t* p = code.data() + i;
    if (p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa) {  // endbr64
      i += 4;
      continue;
    }
    if (p[0] >= 0x50 && p[0] <= 0x57) {  // push r64
      i += 1;
      continue;
    }
    if (p[0] == 0x41 && p[1] >= 0x50 && p[1] <= 0x57) {  // push r8..r15
      i += 2;
      continue;
    }
    if (p[0] == 0x90) {  // nop
      i += 1;
      continue;
    }
    size_t rex = (p[0] & 0xf0) == 0x40 ? 1 : 0;
    uint8_t op = p[rex];
    bool reg_form = (p[rex + 1] >> 6) == 3;  // ModRM mod=11: registers only, no memory
    if (!reg_form) return std::nullopt;
    switch (op) {
      case 0x01:  // add r/m, r
      case 0x29:  // sub r/m, r
      case 0x31:  // xor r/m, r
      case 0x85:  // test r/m, r
      case 0x89:  // mov r/m, r
      case 0x8b:  // mov r, r/m
        i += rex + 2;
        continue;
      case 0x83:  // add/or/and/sub/cmp r/m, imm8
        i += rex + 3;
        continue;
      case 0x81:  // the same with imm32
        i += rex + 6;
        continue;
      default:
        return std::nullopt;
    }
  }
  return i;
}

std::string Jump(uint64_t from, uint64_t to) {
  int64_t rel = static_cast<int64_t>(to) - static_cast<int64_t>(from + 5);
  if (rel < INT32_MIN || rel > INT32_MAX) {
    throw FaultError("jump from " + std::to_string(from) + " to " + std::to_string(to) +
                     " does not fit in rel32");
  }
  std::string out(5, '\0');
  out[0] = static_cast<char>(0xe9);
  int32_t r = static_cast<int32_t>(rel);
  std::memcpy(out.data() + 1, &r, 4);
  return out;
}

Blob BuildBlob(const BlobParams& p) {
  const BlobLayout& l = Layout();
  Blob b;
  b.bytes.assign(reinterpret_cast<const char*>(faultline_time_blob_begin), l.size);
  // Floor division: the nanosecond part is always in [0, 1e9) so the blob adds with one carry.
  int64_t sec = p.offset_ns / 1'000'000'000, nsec = p.offset_ns % 1'000'000'000;
  if (nsec < 0) {
    nsec += 1'000'000'000;
    sec -= 1;
  }
  PutU64(b.bytes, kOffSec, static_cast<uint64_t>(sec));
  PutU64(b.bytes, kOffNsec, static_cast<uint64_t>(nsec));
  PutU64(b.bytes, kMask, p.clock_mask);
  std::string slot;
  if (auto n = DisplaceableLength(p.real_prologue)) {
    slot.assign(reinterpret_cast<const char*>(p.real_prologue.data()), *n);
    slot += Jump(p.blob_addr + l.real_slot + *n, p.real_clock_gettime + *n);
  } else {
    // mov eax, SYS_clock_gettime; syscall; ret
    static const uint8_t kSyscall[] = {0xb8, 0xe4, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xc3};
    slot.assign(reinterpret_cast<const char*>(kSyscall), sizeof kSyscall);
    b.real_via_syscall = true;
  }
  if (slot.size() > kRealSlotSize) throw FaultError("displaced prologue too long");
  b.bytes.replace(l.real_slot, slot.size(), slot);
  return b;
}

}  // namespace faultline::faults::time
