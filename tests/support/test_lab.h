#pragma once

#include <string>
#include <vector>

#include "deploy/lab/lab.h"
#include "tests/support/subprocess.h"

namespace faultline::testing {

// A real lab (etcd members in their own network namespaces, each with its agent, data dirs on
// the agents' FUSE overlays) brought up under a temp root for one test and taken down — with
// its namespaces, links, mounts and processes — when the object goes, even if the test failed.
// Sets FAULTLINE_LAB_ROOT so `faultline ... --lab NAME` run by the test finds it.
class TestLab {
 public:
  // `tweak` may change members, overlay, intercept_syscalls, no_controller; name, root, agent
  // and controller binaries are set here.
  explicit TestLab(lab::LabOptions tweak = {});
  ~TestLab();
  TestLab(const TestLab&) = delete;
  TestLab& operator=(const TestLab&) = delete;

  const lab::LabInfo& info() const { return info_; }
  const std::string& name() const { return info_.name; }
  const std::filesystem::path& root() const { return root_.path(); }
  int size() const { return int(info_.members.size()); }

  // Client URLs ("http://10.213.x.11:2379", ...) in member order, and joined with commas.
  std::vector<std::string> endpoints() const;
  std::string EndpointsCsv() const { return info_.Endpoints(); }
  // Agent addresses ("unix:///.../eN/agent.sock") in member order, and joined with commas.
  std::vector<std::string> agents() const;
  std::string AgentsCsv() const;
  // The lab's faultline-controller ("unix:///.../controller.sock"); "" with no_controller.
  std::string controller() const { return info_.controller.Address(); }
  // The leader's member name ("e2") as an independent `etcdctl endpoint status` sees it; "" if
  // the members do not agree on one reachable leader.
  std::string EtcdctlLeader() const;
  // Index of the member named `name` ("e2" -> 1); -1 if none.
  int IndexOf(const std::string& name) const;

 private:
  TempDir root_{"faultline-testlab"};
  lab::LabInfo info_;
};

}  // namespace faultline::testing
