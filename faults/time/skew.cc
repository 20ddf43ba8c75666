#include "faults/time/skew.h"

#include <elf.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "faults/core/errors.h"
#include "faults/process/proc.h"
#include "faults/time/blob.h"
#include "faults/time/spec.h"
#include "faults/time/tracer.h"
#include "faults/time/vdso.h"

namespace faultline::faults::time {
namespace {

using json = nlohmann::json;

std::string Hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string Unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::string Who(const SkewPlan& p) { return "pid " + std::to_string(p.pid) + " (" + p.comm + ")"; }

// Which agent patched a process: one file per patched process, written before the patch and
// removed by its revert. Every agent on a host sweeps every process (a crash between patching and
// journaling leaves no journal entry), and a host runs several agents (the lab: one per member,
// in one pid namespace), so without an owner one agent's start would silently undo another's
// live fault. The sweep leaves a patch alone while the agent that made it is alive.
const std::filesystem::path kOwners = "/run/faultline/time-owners";

std::filesystem::path OwnerFile(pid_t pid, uint64_t start_time) {
  return kOwners / (std::to_string(pid) + "-" + std::to_string(start_time));
}

void ClaimTarget(const SkewPlan& p) {
  std::error_code ec;
  std::filesystem::create_directories(kOwners, ec);
  auto self = process::ReadProc(::getpid());
  std::ofstream(OwnerFile(p.pid, p.start_time))
      << ::getpid() << " " << (self ? self->start_time : 0) << "\n";
}

void ReleaseTarget(const SkewPlan& p) {
  std::error_code ec;
  std::filesystem::remove(OwnerFile(p.pid, p.start_time), ec);
}

// The live agent (not `self`) that owns the patch of this process, or 0.
pid_t LiveOwner(pid_t pid, uint64_t start_time, pid_t self) {
  std::ifstream in(OwnerFile(pid, start_time));
  pid_t owner = 0;
  uint64_t owner_start = 0;
  if (!(in >> owner >> owner_start) || owner <= 0 || owner == self) return 0;
  auto info = process::ReadProc(owner);
  return info && info->start_time == owner_start ? owner : 0;
}

// The vDSO is where the plan says: the same process, not exec'd since.
bool SameVdso(const SkewPlan& p) {
  if (!process::SameProcess(p.pid, p.start_time)) return false;
  auto m = FindVdso(p.pid);
  return m && m->base == p.vdso_base && m->size == p.vdso_size;
}

}  // namespace

json SkewPlan::ToJson() const {
  json ps = json::array();
  for (const auto& p : patches) {
    ps.push_back({{"addr", p.addr}, {"before", Hex(p.before)}, {"after", Hex(p.after)}});
  }
  return {{"pid", pid},
          {"start_time", start_time},
          {"comm", comm},
          {"vdso_base", vdso_base},
          {"vdso_size", vdso_size},
          {"syscall", real_via_syscall},
          {"patches", ps}};
}

SkewPlan SkewPlan::FromJson(const json& j) {
  SkewPlan p;
  p.pid = j.value("pid", 0);
  p.start_time = j.value("start_time", uint64_t{0});
  p.comm = j.value("comm", std::string());
  p.vdso_base = j.value("vdso_base", uint64_t{0});
  p.vdso_size = j.value("vdso_size", uint64_t{0});
  p.real_via_syscall = j.value("syscall", false);
  for (const auto& x : j.value("patches", json::array())) {
    p.patches.push_back({x.value("addr", uint64_t{0}), Unhex(x.value("before", std::string())),
                         Unhex(x.value("after", std::string()))});
  }
  return p;
}

void CheckX86_64(pid_t pid, const std::string& who) {
  CheckX86_64Executable("/proc/" + std::to_string(pid) + "/exe", who);
}

void CheckX86_64Executable(const std::string& path, const std::string& who) {
  std::ifstream exe(path, std::ios::binary);
  Elf64_Ehdr eh{};
  // e_machine sits at the same offset in 32- and 64-bit headers.
  if (!exe.read(reinterpret_cast<char*>(&eh), sizeof eh) ||
      std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    throw FaultError(who + ": cannot read its executable's ELF header");
  }
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
    std::string machine = eh.e_machine == EM_386       ? "i386"
                          : eh.e_machine == EM_AARCH64 ? "aarch64"
                          : eh.e_machine == EM_X86_64  ? "x86-64 (x32)"
                                                       : "machine " + std::to_string(eh.e_machine);
    throw FaultError(who + " is a " +
                     std::string(eh.e_ident[EI_CLASS] == ELFCLASS64 ? "64" : "32") + "-bit " +
                     machine + " program; time faults serve x86-64 programs only");
  }
}

SkewPlan PlanSkew(pid_t pid, uint64_t start_time, const std::string& comm, int64_t offset_ns,
                  uint64_t clock_mask) {
  SkewPlan p;
  p.pid = pid;
  p.start_time = start_time;
  p.comm = comm;
  const std::string who = Who(p);
  CheckX86_64(pid, who);
  if (pid_t tracer = TracerOf(pid, pid); tracer != 0) {
    auto t = process::ReadProc(tracer);
    throw FaultError(who + " is already traced by pid " + std::to_string(tracer) +
                     (t ? " (" + t->comm + ")" : "") + "; detach it first");
  }
  auto m = FindVdso(pid);
  if (!m) throw FaultError(who + " has no vDSO");
  p.vdso_base = m->base;
  p.vdso_size = m->size;
  ProcessMemory mem(pid);
  std::string image = mem.Read(m->base, m->size);
  VdsoLayout l = ParseVdso(image);
  const BlobLayout& bl = Layout();
  if (l.free_begin + bl.size > m->size) {
    throw FaultError(who + ": its vDSO has " + std::to_string(m->size - l.free_begin) +
                     " free bytes, the time blob needs " + std::to_string(bl.size));
  }
  std::string before = image.substr(l.free_begin, bl.size);
  if (before.compare(0, kMagic.size(), kMagic) == 0) {
    throw FaultError(who + " already has a time fault (its vDSO carries a time blob)");
  }
  if (before.find_first_not_of('\0') != std::string::npos) {
    throw FaultError(who + ": the unused tail of its vDSO is not empty (patched by another tool?)");
  }
  const std::string& own = OwnVdsoImage();
  uint64_t blob_addr = m->base + l.free_begin;
  auto prologue = std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(image.data()) + l.clock_gettime, 16);
  Blob blob = BuildBlob({offset_ns, clock_mask, blob_addr, m->base + l.clock_gettime, prologue});
  p.real_via_syscall = blob.real_via_syscall;
  p.patches.push_back({blob_addr, before, blob.bytes});
  auto entry = [&](uint64_t off, size_t fake) {
    if (off == 0) return;
    std::string cur = image.substr(off, 5);
    // A breakpoint or another tool's jump there would be restored wrongly later: refuse.
    if (own.size() == image.size() && own.compare(off, 5, cur) != 0) {
      throw FaultError(who + ": its vDSO entry point at +" + std::to_string(off) +
                       " was changed by someone else (a debugger breakpoint?)");
    }
    p.patches.push_back({m->base + off, cur, Jump(m->base + off, blob_addr + fake)});
  };
  entry(l.clock_gettime, bl.clock_gettime);
  if (clock_mask & kRealtimeMask) {
    entry(l.gettimeofday, bl.gettimeofday);
    entry(l.time, bl.time);
  }
  return p;
}

void ApplySkew(const SkewPlan& plan, std::chrono::milliseconds stop_timeout) {
  const std::string who = Who(plan);
  if (!SameVdso(plan)) throw FaultError(who + " exited or exec'd before the skew was applied");
  StoppedProcess stopped(plan.pid, stop_timeout);
  if (!SameVdso(plan)) throw FaultError(who + " exec'd before the skew was applied");
  ProcessMemory mem(plan.pid);
  bool all_applied = true;
  for (const auto& p : plan.patches) {
    std::string cur = mem.Read(p.addr, p.after.size());
    if (cur == p.after) continue;
    all_applied = false;
    if (cur != p.before) {
      throw FaultError(who + ": vDSO bytes at +" + std::to_string(p.addr - plan.vdso_base) +
                       " changed since the fault was planned; nothing applied");
    }
  }
  if (all_applied) return;
  ClaimTarget(plan);
  // A thread stopped inside the first 5 bytes of an entry point would resume in the middle of
  // the jump written there: step it past them first.
  for (pid_t tid : stopped.Threads()) {
    for (size_t i = 1; i < plan.patches.size(); ++i) {
      uint64_t a = plan.patches[i].addr;
      stopped.StepOutOf(tid, a + 1, a + plan.patches[i].after.size());
    }
  }
  size_t done = 0;
  try {
    for (const auto& p : plan.patches) {
      mem.Write(p.addr, p.after);
      ++done;
    }
  } catch (...) {
    for (size_t i = done; i-- > 0;) {
      try {
        mem.Write(plan.patches[i].addr, plan.patches[i].before);
      } catch (...) {
      }
    }
    throw;
  }
}

namespace {

RevertResult RevertSkewOnce(const SkewPlan& plan, std::chrono::milliseconds stop_timeout) {
  if (!SameVdso(plan)) return RevertResult::kGone;
  bool clean = true;
  {
    ProcessMemory mem(plan.pid);
    for (const auto& p : plan.patches) {
      if (mem.Read(p.addr, p.before.size()) != p.before) clean = false;
    }
  }
  if (clean) return RevertResult::kAlreadyClean;
  std::unique_ptr<StoppedProcess> stopped;
  try {
    stopped = std::make_unique<StoppedProcess>(plan.pid, stop_timeout);
  } catch (const FaultError&) {
    if (!SameVdso(plan)) return RevertResult::kGone;
    throw;
  }
  ProcessMemory mem(plan.pid);
  std::string conflicts;
  auto restore = [&](const Patch& p) {
    std::string cur = mem.Read(p.addr, p.before.size());
    if (cur == p.before) return;
    if (cur != p.after) {
      conflicts += (conflicts.empty() ? "" : ", ") + std::to_string(p.addr - plan.vdso_base);
      return;
    }
    mem.Write(p.addr, p.before);
  };
  // Entry points first: from now on no call enters the blob.
  for (size_t i = 1; i < plan.patches.size(); ++i) restore(plan.patches[i]);
  // A thread may still be inside the blob, or inside the real clock_gettime the blob called
  // (returning into the blob): run each out of the vDSO before the blob is erased.
  for (pid_t tid : stopped->Threads()) {
    stopped->StepOutOf(tid, plan.vdso_base, plan.vdso_base + plan.vdso_size);
  }
  if (!plan.patches.empty()) restore(plan.patches[0]);
  if (!conflicts.empty()) {
    throw FaultError(Who(plan) + ": vDSO bytes at +" + conflicts +
                     " were changed by someone else and left as they are; the rest is restored");
  }
  return RevertResult::kRestored;
}

}  // namespace

RevertResult RevertSkew(const SkewPlan& plan, std::chrono::milliseconds stop_timeout) {
  RevertResult r = RevertSkewOnce(plan, stop_timeout);
  ReleaseTarget(plan);  // not on a throw: the patch (or part of it) is still there
  return r;
}

std::vector<std::string> SweepSkews(pid_t self, std::chrono::milliseconds stop_timeout) {
  std::vector<std::string> out;
  const std::string& own = OwnVdsoImage();
  VdsoLayout l = ParseVdso(own);
  const BlobLayout& bl = Layout();
  for (pid_t pid : process::ListPids()) {
    if (pid == self) continue;
    auto m = FindVdso(pid);
    if (!m || m->size != own.size()) continue;
    SkewPlan p;
    try {
      ProcessMemory mem(pid);
      if (mem.Read(m->base + l.free_begin, kMagic.size()) != kMagic) continue;
      auto info = process::ReadProc(pid);
      if (!info) continue;
      if (pid_t owner = LiveOwner(pid, info->start_time, self)) {
        out.push_back("left the vDSO of pid " + std::to_string(pid) + " (" + info->comm +
                      ") alone: its time fault belongs to agent pid " + std::to_string(owner) +
                      ", alive");
        continue;
      }
      p.pid = pid;
      p.start_time = info->start_time;
      p.comm = info->comm;
      p.vdso_base = m->base;
      p.vdso_size = m->size;
      // Restore from the agent's own image: blob area first, then every entry point.
      std::string cur = mem.Read(m->base, m->size);
      p.patches.push_back({m->base + l.free_begin, own.substr(l.free_begin, bl.size),
                           cur.substr(l.free_begin, bl.size)});
      for (uint64_t off : {l.clock_gettime, l.gettimeofday, l.time}) {
        if (off != 0) p.patches.push_back({m->base + off, own.substr(off, 5), cur.substr(off, 5)});
      }
      RevertSkew(p, stop_timeout);
      out.push_back("restored the vDSO of " + Who(p) + " (a time fault no journal listed)");
    } catch (const std::exception& e) {
      out.push_back("could not restore the vDSO of pid " + std::to_string(pid) + ": " + e.what());
    }
  }
  return out;
}

}  // namespace faultline::faults::time
