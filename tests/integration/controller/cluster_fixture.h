#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace faultline::testing {

// Three etcd members on loopback (ports derived from the test pid) and one faultline-agent per
// member labelled member=<name> app=etcd — the lab's shape without namespaces, for tests that
// need real etcd and real agents. Everything is killed and removed on destruction. Without
// agents it is a plain etcd (e.g. the controller's HA state store, next to the cluster under
// test: a second instance in the same process takes the next free block of ports).
class EtcdCluster {
 public:
  explicit EtcdCluster(int members = 3, bool with_agents = true);
  ~EtcdCluster();

  std::vector<std::string> endpoints() const { return endpoints_; }
  std::string EndpointsCsv() const;
  std::string AgentsCsv() const;
  std::vector<std::string> agent_addresses() const;
  pid_t etcd_pid(int i) const { return etcd_[size_t(i)]->pid(); }
  pid_t agent_pid(int i) const { return agents_[size_t(i)]->process().pid(); }
  // Member i's agent's state dir (its journal, controller-epochs.json).
  std::filesystem::path agent_state_dir(int i) const {
    return dir() / ("agent-" + name(i)) / "state";
  }
  const std::filesystem::path& dir() const { return dir_.path(); }
  int size() const { return int(endpoints_.size()); }
  // "c<N>-<port base>": unique on the host, so a pause by cmdline ("--name c1-20150 ") never hits
  // another cluster's etcd (another test process, or a second cluster in this one).
  std::string name(int i) const {
    return "c" + std::to_string(i + 1) + "-" + std::to_string(base_);
  }

  // The leader as an independent `etcdctl endpoint status` reports it (member name), or "".
  std::string EtcdctlLeader() const;
  // /proc/PID/stat state letter of member i's etcd ('T' when stopped).
  char EtcdState(int i) const;

 private:
  TempDir dir_;
  int base_ = 0;  // first port of this cluster's block
  std::vector<std::string> endpoints_;
  std::vector<std::unique_ptr<Subprocess>> etcd_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

}  // namespace faultline::testing
