#pragma once

// Does a cluster match what an experiment needs (spec.cluster)? `faultline run --lab` refuses a
// lab that does not and prints the `lab up` command that would; `faultline reproduce` builds the
// lab from the same requirements.

#include <map>
#include <string>
#include <vector>

#include "experiments/etcd_version.h"
#include "faultline/v1/experiment.pb.h"

namespace faultline::experiments {

// What a running cluster is, as far as requirements go (the lab records all of it).
struct ClusterFacts {
  std::string etcd_version;                       // "3.5.16"
  std::map<std::string, std::string> etcd_flags;  // given to every member
  std::vector<std::string> etcd_flags_dropped;    // asked for, absent from this version
  int members = 0;
};

// One line per way `facts` fails `want`; empty when it matches. A flag the lab left out because
// its version lacks it matches (that version cannot be asked for more).
std::vector<std::string> ClusterMismatches(const v1::ClusterRequirements& want,
                                           const ClusterFacts& facts);

// The `faultline lab up` command for a lab named `lab` that meets `want` on `etcd_version`.
std::string LabUpCommand(const v1::ClusterRequirements& want, const std::string& etcd_version,
                         const std::string& lab);

// Whether `version` is in `range` (an unparsable version is in no range but the empty one).
bool VersionIn(const std::string& version, const std::string& range);

}  // namespace faultline::experiments
