#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace faultline::faults::time {

// One change to a target's memory: the bytes before and after.
struct Patch {
  uint64_t addr = 0;
  std::string before, after;
};

// Everything needed to skew one process's clock and to undo it, computed before anything is
// changed and journaled: the revert needs nothing else.
struct SkewPlan {
  pid_t pid = 0;
  uint64_t start_time = 0;  // tells the pid apart from a later process reusing it
  std::string comm;
  uint64_t vdso_base = 0, vdso_size = 0;
  bool real_via_syscall = false;
  // The blob into the vDSO's unused tail first, then the entry-point jumps.
  std::vector<Patch> patches;

  nlohmann::json ToJson() const;
  static SkewPlan FromJson(const nlohmann::json& j);
};

// Checks the target (an x86-64 program, not traced, a vDSO with room, not already patched)
// and computes the plan. Reads the target's memory; changes nothing. Throws FaultError.
SkewPlan PlanSkew(pid_t pid, uint64_t start_time, const std::string& comm, int64_t offset_ns,
                  uint64_t clock_mask);

// Stops every thread, checks the bytes are still as planned, writes the patches, lets the
// threads go. Idempotent. Throws FaultError with nothing changed.
void ApplySkew(const SkewPlan& plan, std::chrono::milliseconds stop_timeout);

enum class RevertResult { kRestored, kAlreadyClean, kGone };
// Restores every patched byte (entry points first, then, once no thread runs in the vDSO, the
// blob). A target that exited or exec'd needs nothing. Idempotent. Throws FaultError if a byte
// is neither as planned nor as patched (someone else changed it), after restoring the rest.
RevertResult RevertSkew(const SkewPlan& plan, std::chrono::milliseconds stop_timeout);

// Processes whose vDSO carries a time blob (a dead agent's fault the journal does not cover):
// restores their vDSO from the agent's own. Returns one line per process restored.
std::vector<std::string> SweepSkews(pid_t self, std::chrono::milliseconds stop_timeout);

// "is an x86-64 program" check of /proc/PID/exe; throws FaultError naming the machine.
void CheckX86_64(pid_t pid, const std::string& who);
// The same for an executable file.
void CheckX86_64Executable(const std::string& path, const std::string& who);

}  // namespace faultline::faults::time
