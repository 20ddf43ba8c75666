#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "faults/core/registry.h"

namespace faultline::faults::stress {

struct StressOptions {
  // The cgroup v2 mount; empty: found in /proc/self/mountinfo.
  std::filesystem::path cgroup_root;
  // Directory under the root holding one cgroup per fault.
  std::string cgroup_parent = "faultline.stress";
};

// The "stress" family: cpu and memory. Each fault's workers live in
// <cgroup root>/<cgroup_parent>/<fault id>; a fault id starts with a tag derived from the agent's
// state dir, so an agent's Sweep removes only its own leftovers when several agents share a host
// (the lab runs one per member).
std::unique_ptr<FaultFactory> MakeStressFactory(StressOptions options = {});
void RegisterStressFaults(Registry& registry, StressOptions options = {});

// The fault id prefix an agent with this state dir gives its stress cgroups.
std::string AgentTag(const std::filesystem::path& state_dir);

}  // namespace faultline::faults::stress
