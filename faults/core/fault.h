#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "faultline/v1/fault.pb.h"
#include "faults/core/errors.h"
#include "faults/core/rng.h"
#include "faults/core/supervisor.h"

namespace faultline::faults {

// Counters that prove a fault acts (packets held, ops delayed, pids stopped, ...).
using Counters = std::map<std::string, int64_t>;

// What a fault may use of its host agent. Owned by the agent; outlives every fault.
struct FaultContext {
  // Directory for a fault family's own files (sockets, scratch mounts).
  std::filesystem::path state_dir;
  // The agent's own pid: process faults refuse to target it.
  int agent_pid = 0;
  // The agent's managed processes; nullptr where the agent manages none.
  Supervisor* supervisor = nullptr;
};

// One injected fault. Lifecycle: prepare() resolves targets without changing anything, the
// agent journals state(), apply() changes the system, revert() undoes it. apply() and revert()
// are idempotent; revert() works on a fault rebuilt by FaultFactory::Restore from the journal.
class Fault {
 public:
  virtual ~Fault() = default;

  // Resolve targets and check the fault can be served here. Changes nothing. Throws
  // FaultError with the reason if it cannot be applied.
  virtual void Prepare() {}
  // JSON recorded in the journal before Apply(): enough for Revert() after a crash.
  virtual std::string State() const { return "{}"; }
  virtual void Apply() = 0;
  virtual void Revert() = 0;
  // One line saying what the fault does to what, e.g. "SIGSTOP pid 4242 (etcd)".
  virtual std::string Describe() const = 0;
  virtual Counters Observe() const { return {}; }
  // "family/action", e.g. "process/pause".
  virtual std::string Kind() const = 0;
  // True when the whole effect happens in Apply() (a signal, a kill, a restart): nothing stays
  // applied, so the agent records the fault as completed at once instead of holding a lease.
  virtual bool OneShot() const { return false; }
  // When the fault ends unless renewed (the earlier of its lease and its duration), told before
  // Apply() and again at every renewal. A fault whose effect lives outside the agent (an IO rule
  // in its overlay process) hands it on, so the effect ends on time even if the agent is gone.
  virtual void Lease(std::chrono::steady_clock::time_point /*until*/) {}
};

// Creates the faults of one family. Registered by family name (the FaultSpec oneof field).
class FaultFactory {
 public:
  virtual ~FaultFactory() = default;
  virtual std::string_view Family() const = 0;
  // Every problem at once, field paths relative to the spec root ("process.signal").
  virtual FieldErrors Validate(const v1::FaultSpec& spec) const = 0;
  virtual std::unique_ptr<Fault> Create(const v1::FaultSpec& spec,
                                        const FaultContext& ctx) const = 0;
  // Rebuilds a fault from its journal record (spec and State()) so it can be reverted.
  virtual std::unique_ptr<Fault> Restore(const v1::FaultSpec& spec, std::string_view state,
                                         const FaultContext& ctx) const = 0;
  // After journal replay at agent start: removes objects carrying faultline's tags that no
  // journal entry accounted for (a crash between creating and journaling). Returns what it did.
  virtual std::vector<std::string> Sweep(const FaultContext& /*ctx*/) const { return {}; }
  // Kernel/host features this family needs, probed at agent start: name -> (available, detail).
  virtual std::map<std::string, std::pair<bool, std::string>> Probe() const { return {}; }
};

// The family name of a spec ("process", "io", ...), or "" if no family is set.
std::string FamilyOf(const v1::FaultSpec& spec);

}  // namespace faultline::faults
