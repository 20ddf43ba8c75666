#pragma once

// The lab: a local etcd cluster, one network namespace per member joined by a bridge.
//
// Layout. Everything of lab NAME lives in ROOT/NAME (ROOT is $FAULTLINE_LAB_ROOT or
// /var/lib/faultline/lab — on disk, not tmpfs, so etcd's fsyncs cost what they cost in
// production and IO faults have something real to slow down):
//   ROOT/NAME/lab.json            the description (see description.h)
//   ROOT/NAME/eN/etcd/            etcd data dir          ROOT/NAME/eN/etcd.log
//   ROOT/NAME/eN/agent.sock       the member's agent      ROOT/NAME/eN/agent.log
//   ROOT/NAME/eN/agent/           agent state (journal, managed process state)
//   ROOT/NAME/eN/managed.json     the agent's --managed-config (etcd)
//   ROOT/NAME/controller.sock     the lab's faultline-controller (host namespace)
//   ROOT/NAME/controller/         its state store            ROOT/NAME/controller.log
//   BRIDGE_ADDRESS:9479           its /metrics (see kControllerMetricsPort)
// Kernel objects are named from NAME so `lab down` finds them without the description:
// namespaces /run/netns/fl-NAME-eN, bridge fl<tag>br and host veth ends fl<tag>eN, where tag
// is 6 hex digits hashed from NAME (link names are limited to 15 bytes).
// The controller is found by its --listen argument, which names the lab directory.
// Addresses: a free /24 of 10.213-215.x.0 (see subnet.h); the bridge has .1, eN has .(10+N).
// Members have no default route: their traffic cannot leave the bridge.
// With --ipv6 the bridge and members also get a ULA /64 derived from the /24 (see subnet.h:
// fd00:fa17:213:7::/64 for 10.213.7.0/24; bridge ::1, eN ::1N) and etcd uses only those
// addresses: URLs are written with brackets, http://[fd00:fa17:213:7::11]:2379.

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "deploy/lab/description.h"
#include "faults/sys/command.h"

namespace faultline::lab {

struct LabOptions {
  std::string name = "default";
  int members = 3;
  std::string etcd = "/usr/bin/etcd";
  // An etcd version to run instead of `etcd`: one of ListInstalledEtcd() (etcd_versions.h).
  std::string etcd_version;
  // Extra etcd flags, name without "--" -> value (e.g. snapshot-count -> 100). An experimental
  // flag this etcd lacks is left out (LabInfo::etcd_flags_dropped); any other flag it refuses is an
  // error (ChooseEtcdFlags).
  std::map<std::string, std::string> etcd_flags;
  // faultline-agent binary. Empty: look next to the running binary, then /usr/sbin; none found
  // is an error. With `no_agents`, etcd runs as a plain child without agents.
  std::string agent;
  bool no_agents = false;
  // faultline-controller binary. Empty: look next to the running binary, then /usr/sbin; if none
  // is found (or `no_controller`, or there are no agents) the lab runs without a controller.
  std::string controller;
  bool no_controller = false;
  // etcd's data dir sits on the agent's FUSE overlay (IO faults act on it). With agents only.
  bool overlay = true;
  // Syscalls of etcd routed through the agent's seccomp filter (syscall faults), e.g.
  // {"fdatasync", "fsync"}. Empty: none. With agents only.
  std::vector<std::string> intercept_syscalls;
  // etcd on IPv6: members listen, advertise and peer on the lab's ULA /64 (see above).
  bool ipv6 = false;
  std::filesystem::path root;  // empty: DefaultRoot()
  std::chrono::seconds timeout{60};
  // Called with one line per step ("e1: etcd pid 1234").
  std::function<void(const std::string&)> progress;
};

// The lab controller's /metrics port, on the lab's own bridge address (unique per lab).
inline constexpr int kControllerMetricsPort = 9479;

std::filesystem::path DefaultRoot();
// Throws ValidationError{"--name", why} unless NAME is 1..32 of [A-Za-z0-9_-].
void ValidateLabName(const std::string& name);

std::string NetnsName(const std::string& lab, int member);
std::string BridgeName(const std::string& lab);
std::string VethName(const std::string& lab, int member);

// Brings a lab up and returns its description. Refuses (FaultError) if a lab of that name, or
// any of its namespaces or links, exists. On failure it takes down what it created.
LabInfo Up(const LabOptions& options);

// Removes everything lab NAME created: processes in its namespaces and those recorded, mounts
// under its directory, veths, bridge, namespaces and the directory. Works from the
// description, or from the names alone if there is none. Returns one line per removed thing;
// a lab that is already gone gives an empty list.
std::vector<std::string> Down(const std::string& name, const std::filesystem::path& root = {});

// Names of the labs under ROOT (directories holding lab.json).
std::vector<std::string> ListLabs(const std::filesystem::path& root = {});
// `name` if given, else the only lab there is; throws FaultError if none or several.
std::string ResolveLabName(const std::optional<std::string>& name,
                           const std::filesystem::path& root = {});
LabInfo LoadLab(const std::string& name, const std::filesystem::path& root = {});

// etcd's own view of one member, from `etcdctl endpoint status`: the tests' independent
// observer of a lab (`faultline lab status` asks through controller/verify's client instead).
struct EtcdStatus {
  std::string member;
  std::string endpoint;
  bool reachable = false;
  std::string error;
  uint64_t member_id = 0, leader = 0, revision = 0, raft_index = 0, raft_term = 0,
           raft_applied_index = 0, db_size = 0;
  std::string version;
  bool is_leader() const { return reachable && member_id != 0 && member_id == leader; }
};
std::vector<EtcdStatus> QueryEtcd(const LabInfo& info,
                                  const std::string& etcdctl = "/usr/bin/etcdctl");

using sys::CommandResult;
using sys::RunCommand;

}  // namespace faultline::lab
