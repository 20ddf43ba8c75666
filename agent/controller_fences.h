#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "faultline/v1/agent.pb.h"

namespace faultline::agent {

// The agent's side of controller fencing: the highest election epoch seen per controller (the
// HA replicas of one controller share its identity), kept in a file in the state dir so an
// agent restart does not forget it. A call carrying a lower epoch than the highest seen comes
// from a replica that was deposed (and has not noticed yet): it is refused. A call without a
// fence (a controller without HA) is admitted as always.
class ControllerFences {
 public:
  // Loads `file` if it exists. Throws std::runtime_error when it exists but does not parse:
  // starting with the epochs forgotten would readmit a deposed replica.
  explicit ControllerFences(std::filesystem::path file);

  // Admits a call (`call`: "inject", "renew", "recover") under `fence`: records a higher epoch
  // (durably, before the call goes on) and returns a lock to hold while the call acts, so a
  // higher epoch is only recorded once every call admitted under a lower one has finished.
  // Throws faults::FaultError (FAILED_PRECONDITION) naming both epochs when the epoch is lower
  // and `refuse_lower` (a recover is admitted anyway: ending faults is always safe), and
  // std::runtime_error when a new epoch cannot be written down.
  std::shared_lock<std::shared_mutex> Admit(const v1::ControllerFence& fence,
                                            const std::string& call, bool refuse_lower = true);

  std::map<std::string, int64_t> Highest() const;
  const std::filesystem::path& file() const { return file_; }

 private:
  enum class Verdict { kAdmit, kRaise };
  // mu_ held
  Verdict Judge(const v1::ControllerFence& fence, const std::string& call, bool refuse_lower) const;

  std::filesystem::path file_;
  std::shared_mutex acting_;  // shared by admitted calls; exclusive to raise an epoch
  mutable std::mutex mu_;
  std::map<std::string, int64_t> highest_;
};

}  // namespace faultline::agent
