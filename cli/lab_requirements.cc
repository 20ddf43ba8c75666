#include "cli/lab_requirements.h"

#include <stdexcept>

#include "deploy/lab/etcd_versions.h"

namespace faultline::cli {

experiments::ClusterFacts FactsOf(const lab::LabInfo& info) {
  return {info.etcd_version, info.etcd_flags, info.etcd_flags_dropped,
          static_cast<int>(info.members.size())};
}

void RequireLabFits(const v1::Experiment& exp, const lab::LabInfo& info) {
  if (!exp.has_cluster()) return;
  auto mismatches = experiments::ClusterMismatches(exp.cluster(), FactsOf(info));
  if (mismatches.empty()) return;
  // Keep the lab's version if the experiment takes it, else the newest installed one it takes.
  std::string version;
  if (experiments::VersionIn(info.etcd_version, exp.cluster().etcd_version())) {
    version = info.etcd_version;
  } else {
    for (const auto& e : lab::ListInstalledEtcd()) {
      if (experiments::VersionIn(e.version.ToString(), exp.cluster().etcd_version())) {
        version = e.version.ToString();
      }
    }
    if (version.empty()) version = "VERSION  # none installed is " + exp.cluster().etcd_version();
  }
  std::string why;
  for (const auto& m : mismatches) why += "\n  " + m;
  throw std::invalid_argument(
      "--lab: " + exp.name() + " (" + exp.source() + ") needs another cluster than lab " +
      info.name + ":" + why + "\nbring one up with:\n  faultline lab down --name " + info.name +
      "\n  " + experiments::LabUpCommand(exp.cluster(), version, info.name));
}

lab::LabOptions LabOptionsFor(const v1::Experiment& exp, const std::string& version,
                              const std::string& name) {
  lab::LabOptions o;
  o.name = name;
  o.etcd_version = version;
  if (exp.cluster().members() != 0) o.members = static_cast<int>(exp.cluster().members());
  o.etcd_flags.insert(exp.cluster().etcd_flags().begin(), exp.cluster().etcd_flags().end());
  return o;
}

}  // namespace faultline::cli
