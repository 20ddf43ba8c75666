#include "agent/controller_fences.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "faults/core/errors.h"
#include "faults/sys/atomic_file.h"

namespace faultline::agent {

ControllerFences::ControllerFences(std::filesystem::path file) : file_(std::move(file)) {
  std::ifstream in(file_);
  if (!in) return;
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_object()) {
    throw std::runtime_error(file_.string() +
                             ": not a JSON object of controller epochs; refusing to start with "
                             "them forgotten (remove the file to reset fencing)");
  }
  for (const auto& [controller, epoch] : j.items()) {
    if (epoch.is_number_integer()) highest_[controller] = epoch.get<int64_t>();
  }
}

std::map<std::string, int64_t> ControllerFences::Highest() const {
  std::lock_guard lock(mu_);
  return highest_;
}

ControllerFences::Verdict ControllerFences::Judge(const v1::ControllerFence& fence,
                                                  const std::string& call,
                                                  bool refuse_lower) const {
  auto it = highest_.find(fence.controller());
  if (it == highest_.end() || fence.epoch() > it->second) return Verdict::kRaise;
  if (fence.epoch() < it->second && refuse_lower) {
    throw faults::FaultError(
        call + " refused: controller " + fence.controller() + " replica " +
        (fence.replica().empty() ? "(unnamed)" : fence.replica()) + " sent election epoch " +
        std::to_string(fence.epoch()) + ", lower than epoch " + std::to_string(it->second) +
        " already seen from that controller: the replica was deposed (only Recover is accepted "
        "from it)");
  }
  return Verdict::kAdmit;
}

std::shared_lock<std::shared_mutex> ControllerFences::Admit(const v1::ControllerFence& fence,
                                                            const std::string& call,
                                                            bool refuse_lower) {
  if (fence.controller().empty()) return std::shared_lock(acting_);
  if (fence.epoch() <= 0) {
    throw faults::ValidationError("fence.epoch", "must be positive when fence.controller is set");
  }
  for (;;) {
    std::shared_lock acting(acting_);
    {
      std::lock_guard lock(mu_);
      if (Judge(fence, call, refuse_lower) == Verdict::kAdmit) return acting;
    }
    acting.unlock();
    // A new epoch: wait for the calls admitted under older ones to finish, then write it down
    // before anything under it acts, so a restarted agent still refuses the older ones.
    std::unique_lock raising(acting_);
    std::lock_guard lock(mu_);
    if (Judge(fence, call, refuse_lower) == Verdict::kRaise) {
      auto next = highest_;
      next[fence.controller()] = fence.epoch();
      nlohmann::json j = next;
      sys::WriteFileAtomic(file_, j.dump(1) + "\n");
      highest_ = std::move(next);
    }
  }
}

}  // namespace faultline::agent
