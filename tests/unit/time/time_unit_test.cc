// Pure parts of the time family, and the blob run in this very process (no ptrace, no root):
// copied into an executable page near the vDSO, it must add the offset exactly.
#include <elf.h>
#include <gtest/gtest.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "faults/core/duration.h"
#include "faults/core/registry.h"
#include "faults/time/blob.h"
#include "faults/time/skew.h"
#include "faults/time/spec.h"
#include "faults/time/time_faults.h"
#include "faults/time/vdso.h"

namespace faultline::faults::time {
namespace {

using namespace std::chrono_literals;
constexpr int64_t kSec = 1'000'000'000;

v1::FaultSpec Spec(std::chrono::nanoseconds offset) {
  v1::FaultSpec spec;
  auto* t = spec.mutable_time();
  t->set_action(v1::TimeFault::OFFSET);
  t->mutable_target()->set_managed("etcd");
  ToProto(offset, t->mutable_offset());
  return spec;
}

std::vector<std::string> Fields(const FieldErrors& e) {
  std::vector<std::string> out;
  for (const auto& x : e) out.push_back(x.field);
  return out;
}

TEST(TimeValidation, AGoodSpecPassesAndEveryProblemIsNamed) {
  EXPECT_TRUE(ValidateTimeFault(Spec(-60s)).empty());
  v1::FaultSpec bad;
  bad.mutable_time()->add_clocks(static_cast<v1::TimeFault::Clock>(42));
  EXPECT_EQ(
      Fields(ValidateTimeFault(bad)),
      (std::vector<std::string>{"time.action", "time.target", "time.offset", "time.clocks[0]"}));
  TimeOptions o;
  o.max_offset = 10min;
  auto e = ValidateTimeFault(Spec(11min), o);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].field, "time.offset");
  EXPECT_NE(e[0].reason.find("10m"), std::string::npos) << e[0].reason;
  EXPECT_EQ(ValidateTimeFault(Spec(-11min), o).size(), 1u);
  // Through the registry, as the agent and the controller see it.
  Registry r;
  RegisterTimeFaults(r);
  EXPECT_TRUE(r.Validate(Spec(-60s)).empty());
  EXPECT_EQ(FamilyOf(Spec(1s)), "time");
}

TEST(TimeValidation, ClockMasks) {
  v1::TimeFault f;
  EXPECT_EQ(ClockMask(f), kRealtimeMask);
  f.add_clocks(v1::TimeFault::MONOTONIC);
  EXPECT_EQ(ClockMask(f), kMonotonicMask);
  f.add_clocks(v1::TimeFault::BOOTTIME);
  EXPECT_EQ(ClockMask(f), kMonotonicMask | kBoottimeMask);
  EXPECT_TRUE(kRealtimeMask & (1u << CLOCK_REALTIME_COARSE));
  EXPECT_TRUE(kMonotonicMask & (1u << CLOCK_MONOTONIC_RAW));
}

TEST(Blob, DisplaceableLengthTakesOnlyPositionIndependentPrologues) {
  const uint8_t linux618[] = {0x55, 0x48, 0x89, 0xe5, 0x41, 0x56, 0x53, 0x48,
                              0x83, 0xe4, 0xf0, 0x48, 0x83, 0xec, 0x10, 0x83};
  EXPECT_EQ(DisplaceableLength(linux618), 6u);  // push rbp; mov rbp,rsp; push r14
  const uint8_t ibt[] = {0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(DisplaceableLength(ibt), 5u);
  // gettimeofday's: push rbp; lea r10,[rip+...] — RIP-relative, cannot move.
  const uint8_t riprel[] = {0x55, 0x4c, 0x8d, 0x15, 0xc8, 0x97, 0xff, 0xff,
                            0x48, 0x89, 0xe5, 0,    0,    0,    0,    0};
  EXPECT_FALSE(DisplaceableLength(riprel));
  const uint8_t jump[] = {0xe9, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_FALSE(DisplaceableLength(jump));
}

TEST(Blob, JumpEncodesRel32AndRefusesFarTargets) {
  EXPECT_EQ(Jump(0x1000, 0x1010), std::string("\xe9\x0b\x00\x00\x00", 5));
  EXPECT_EQ(Jump(0x1010, 0x1000), std::string("\xe9\xeb\xff\xff\xff", 5));
  EXPECT_THROW(Jump(0x1000, 0x1000 + (uint64_t{1} << 33)), FaultError);
}

TEST(Vdso, OwnVdsoParsesWithRoomForTheBlob) {
  VdsoLayout l = ParseVdso(OwnVdsoImage());
  EXPECT_GT(l.clock_gettime, 0u);
  EXPECT_GT(l.gettimeofday, 0u);
  EXPECT_GT(l.time, 0u);
  EXPECT_GE(OwnVdsoImage().size() - l.free_begin, Layout().size);
  EXPECT_EQ(OwnVdsoImage().find_first_not_of('\0', l.free_begin), std::string::npos)
      << "the vDSO's tail is not empty";
  EXPECT_THROW(ParseVdso(std::string(64, 'x')), FaultError);
}

// Runs the blob here: an executable page within rel32 reach of this process's vDSO.
class BlobRun : public ::testing::Test {
 protected:
  void Load(int64_t offset_ns, uint64_t mask, bool force_syscall) {
    uint64_t vdso = getauxval(AT_SYSINFO_EHDR);
    VdsoLayout l = ParseVdso(OwnVdsoImage());
    for (uint64_t hint = vdso - (64u << 20); hint > vdso - (1u << 30); hint -= (16u << 20)) {
      void* p = mmap(reinterpret_cast<void*>(hint), 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (p != MAP_FAILED) {
        page_ = p;
        break;
      }
    }
    ASSERT_NE(page_, nullptr);
    std::string prologue =
        force_syscall ? std::string(32, '\xcc') : OwnVdsoImage().substr(l.clock_gettime, 32);
    Blob b = BuildBlob(
        {offset_ns, mask, reinterpret_cast<uint64_t>(page_), vdso + l.clock_gettime,
         std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(prologue.data()), 32)});
    EXPECT_EQ(b.real_via_syscall, force_syscall);
    std::memcpy(page_, b.bytes.data(), b.bytes.size());
    ASSERT_EQ(mprotect(page_, 4096, PROT_READ | PROT_EXEC), 0);
    auto at = [&](size_t off) { return static_cast<char*>(page_) + off; };
    cgt_ = reinterpret_cast<int (*)(clockid_t, timespec*)>(at(Layout().clock_gettime));
    gtod_ = reinterpret_cast<int (*)(timeval*, void*)>(at(Layout().gettimeofday));
    time_ = reinterpret_cast<time_t (*)(time_t*)>(at(Layout().time));
  }
  void TearDown() override {
    if (page_) munmap(page_, 4096);
  }
  static int64_t Sys(clockid_t id) {
    timespec ts{};
    syscall(SYS_clock_gettime, id, &ts);
    return ts.tv_sec * kSec + ts.tv_nsec;
  }
  void* page_ = nullptr;
  int (*cgt_)(clockid_t, timespec*) = nullptr;
  int (*gtod_)(timeval*, void*) = nullptr;
  time_t (*time_)(time_t*) = nullptr;
};

TEST_F(BlobRun, AddsANegativeFractionalOffsetToMaskedClocksOnly) {
  for (bool sys : {false, true}) {
    SCOPED_TRACE(sys ? "real clock by syscall" : "real clock through the displaced prologue");
    Load(-2'300'000'000, kRealtimeMask, sys);
    timespec ts{};
    int64_t before = Sys(CLOCK_REALTIME);
    ASSERT_EQ(cgt_(CLOCK_REALTIME, &ts), 0);
    int64_t after = Sys(CLOCK_REALTIME);
    int64_t got = ts.tv_sec * kSec + ts.tv_nsec;
    EXPECT_GE(got, before - 2'300'000'000);
    EXPECT_LE(got, after - 2'300'000'000);
    EXPECT_GE(ts.tv_nsec, 0);
    EXPECT_LT(ts.tv_nsec, kSec);
    ASSERT_EQ(cgt_(CLOCK_MONOTONIC, &ts), 0);
    EXPECT_NEAR(double(ts.tv_sec * kSec + ts.tv_nsec - Sys(CLOCK_MONOTONIC)) / kSec, 0, 0.1);
    timeval tv{};
    ASSERT_EQ(gtod_(&tv, nullptr), 0);
    EXPECT_NEAR(
        double(tv.tv_sec * 1'000'000 + tv.tv_usec) / 1e6 - double(Sys(CLOCK_REALTIME)) / kSec, -2.3,
        0.1);
    time_t t = 0;
    EXPECT_NEAR(double(time_(&t)) - double(Sys(CLOCK_REALTIME)) / kSec, -2.3, 1.1);
    EXPECT_EQ(t, time_(nullptr));
    // Errors pass through untouched.
    EXPECT_NE(cgt_(12345, &ts), 0);
    TearDown();
    page_ = nullptr;
  }
}

TEST_F(BlobRun, PositiveOffsetCarriesNanoseconds) {
  Load(1'999'999'999, kMonotonicMask, false);
  for (int i = 0; i < 1000; ++i) {
    timespec ts{};
    int64_t before = Sys(CLOCK_MONOTONIC);
    ASSERT_EQ(cgt_(CLOCK_MONOTONIC, &ts), 0);
    ASSERT_LT(ts.tv_nsec, kSec);
    int64_t got = ts.tv_sec * kSec + ts.tv_nsec;
    ASSERT_GE(got, before + 1'999'999'999);
  }
}

// This kernel may not run 32-bit programs at all, so the check is shown on files.
TEST(TargetCheck, OnlyX8664ProgramsAreServed) {
  auto dir =
      std::filesystem::temp_directory_path() / ("faultline-time-elf-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, unsigned char cls, uint16_t machine) {
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = cls;
    eh.e_machine = machine;
    std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<char*>(&eh), sizeof eh);
    return (dir / name).string();
  };
  try {
    CheckX86_64Executable(write("i386", ELFCLASS32, EM_386), "pid 7 (old)");
    ADD_FAILURE() << "i386 accepted";
  } catch (const FaultError& e) {
    EXPECT_STREQ(e.what(),
                 "pid 7 (old) is a 32-bit i386 program; time faults serve x86-64 programs only");
  }
  EXPECT_THROW(CheckX86_64Executable(write("arm", ELFCLASS64, EM_AARCH64), "p"), FaultError);
  EXPECT_THROW(CheckX86_64Executable((dir / "missing").string(), "p"), FaultError);
  EXPECT_NO_THROW(CheckX86_64Executable(write("amd64", ELFCLASS64, EM_X86_64), "p"));
  EXPECT_NO_THROW(CheckX86_64Executable("/proc/self/exe", "self"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace faultline::faults::time
