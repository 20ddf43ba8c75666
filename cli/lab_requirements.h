#pragma once

// An experiment's cluster requirements (spec.cluster) against a lab: used by `faultline run --lab`
// (refuses a lab that does not fit) and `faultline reproduce` (builds a lab that does).

#include <string>

#include "deploy/lab/lab.h"
#include "experiments/requirements.h"

namespace faultline::cli {

experiments::ClusterFacts FactsOf(const lab::LabInfo& info);

// Throws std::invalid_argument naming every mismatch and the `lab up` command that would fit.
void RequireLabFits(const v1::Experiment& exp, const lab::LabInfo& info);

// The options of a lab for `exp` on etcd `version` (its flags and member count).
lab::LabOptions LabOptionsFor(const v1::Experiment& exp, const std::string& version,
                              const std::string& name);

}  // namespace faultline::cli
