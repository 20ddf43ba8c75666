#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "faultline/v1/experiment.pb.h"
#include "faults/core/rng.h"

namespace faultline::controller {

using Labels = std::map<std::string, std::string>;

// What the runner knows about one agent: how to reach it and its labels (from Capabilities or
// its registration).
struct AgentInfo {
  std::string address;
  std::string hostname;
  Labels labels;
};

// The etcd cluster as seen at one moment (MemberList + Status): member names and the leader's.
struct ClusterView {
  std::vector<std::string> members;
  std::string leader;  // empty: no leader known
};

// The agent label that names the etcd member an agent acts for (the lab sets member=eN).
inline constexpr const char* kMemberLabel = "member";

// Resolves a step's selector to indexes into `agents`, in increasing order. Candidates are the
// agents carrying every match_labels entry, narrowed to the etcd role's members and the listed
// member names (agents are tied to members by `member_label`); the mode then picks among them
// with `rng`. Throws std::invalid_argument naming the field ("target.role", "target.value", ...)
// when the selector cannot be satisfied (no leader, more targets asked than candidates, ...).
std::vector<size_t> ResolveTargets(const v1::TargetSelector& sel,
                                   const std::vector<AgentInfo>& agents, const ClusterView& cluster,
                                   faults::Rng& rng,
                                   const std::string& member_label = kMemberLabel);

// Member names the role covers (MINORITY/MAJORITY pick their members with `rng`).
std::vector<std::string> RoleMembers(v1::TargetSelector::Role role, const ClusterView& cluster,
                                     faults::Rng& rng);

// Replaces "${label:KEY}" in every string field of `msg` (recursively) with the agent's label,
// so one step can address, e.g., each member's own process on a shared host. Throws
// std::invalid_argument naming the label when the agent lacks it.
void SubstituteLabels(google::protobuf::Message* msg, const Labels& labels);

std::string Describe(const v1::TargetSelector& sel);

}  // namespace faultline::controller
