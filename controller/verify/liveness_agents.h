#pragma once

#include <string>
#include <vector>

#include "controller/verify/liveness.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::verify {

// An agent's Processes answer as CheckLiveness reads it. `fallback_member` names the member when
// the agent carries no member label (its address, say).
std::vector<SupervisedProcess> FromAgent(const v1::ProcessesResponse& resp,
                                         const std::string& fallback_member);

// An agent that could not be asked.
SupervisedProcess AgentNotAnswering(const std::string& member, const std::string& error);

}  // namespace faultline::verify
