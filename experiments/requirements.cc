#include "experiments/requirements.h"

#include <algorithm>

namespace faultline::experiments {

bool VersionIn(const std::string& version, const std::string& range) {
  VersionRange r = VersionRange::Parse(range);
  if (r.empty()) return true;
  auto v = ParseEtcdVersion(version);
  return v && r.Contains(*v);
}

std::vector<std::string> ClusterMismatches(const v1::ClusterRequirements& want,
                                           const ClusterFacts& facts) {
  std::vector<std::string> out;
  if (!want.etcd_version().empty() && !VersionIn(facts.etcd_version, want.etcd_version())) {
    out.push_back("etcd " +
                  (facts.etcd_version.empty() ? "of unknown version" : facts.etcd_version) +
                  ", the experiment wants " + want.etcd_version());
  }
  if (want.members() != 0 && static_cast<int>(want.members()) != facts.members) {
    out.push_back(std::to_string(facts.members) + " members, the experiment wants " +
                  std::to_string(want.members()));
  }
  // Sorted by name, so the message is the same every time.
  std::map<std::string, std::string> flags(want.etcd_flags().begin(), want.etcd_flags().end());
  for (const auto& [name, value] : flags) {
    const auto& dropped = facts.etcd_flags_dropped;
    if (std::find(dropped.begin(), dropped.end(), name) != dropped.end()) continue;
    auto it = facts.etcd_flags.find(name);
    if (it == facts.etcd_flags.end()) {
      out.push_back("--" + name + " not given (etcd's default), the experiment wants " + value);
    } else if (it->second != value) {
      out.push_back("--" + name + "=" + it->second + ", the experiment wants " + value);
    }
  }
  return out;
}

std::string LabUpCommand(const v1::ClusterRequirements& want, const std::string& etcd_version,
                         const std::string& lab) {
  std::string cmd = "faultline lab up --name " + lab;
  if (want.members() != 0) cmd += " --members " + std::to_string(want.members());
  if (!etcd_version.empty()) cmd += " --etcd-version " + etcd_version;
  std::map<std::string, std::string> flags(want.etcd_flags().begin(), want.etcd_flags().end());
  for (const auto& [name, value] : flags) cmd += " --etcd-flag " + name + "=" + value;
  return cmd;
}

}  // namespace faultline::experiments
