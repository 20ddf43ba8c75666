#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace faultline::lab {

// One etcd member of a lab: its namespace, link, address and processes.
struct MemberInfo {
  std::string name;          // "e1"
  std::string netns;         // namespace name under /run/netns
  std::string veth;          // host end of the veth pair (the member's end is "eth0")
  std::string address;       // "10.213.7.11", or "fd00:fa17:213:7::11" in an IPv6 lab
  std::string client_url;    // "http://10.213.7.11:2379" or "http://[fd00:fa17:213:7::11]:2379"
  std::string peer_url;      // "http://10.213.7.11:2380"
  std::string dir;           // member directory under the lab directory
  std::string data_dir;      // etcd --data-dir
  std::string agent_socket;  // unix socket of the member's agent; empty without agents
  int agent_pid = 0;
  uint64_t agent_start_time = 0;  // /proc/PID/stat field 22, tells a reused pid apart
  int etcd_pid = 0;
  uint64_t etcd_start_time = 0;
  bool operator==(const MemberInfo&) const = default;
};

// The lab's faultline-controller: in the host namespace, it reaches etcd through the bridge and
// the agents through their unix sockets. An empty binary means the lab runs without one.
struct ControllerInfo {
  std::string binary;
  std::string socket;          // DIR/controller.sock (gRPC)
  std::string state_dir;       // DIR/controller (its embedded store)
  std::string metrics_listen;  // "BRIDGE_ADDRESS:PORT" for GET /metrics
  int pid = 0;
  uint64_t start_time = 0;  // /proc/PID/stat field 22
  bool operator==(const ControllerInfo&) const = default;
  // "unix://DIR/controller.sock" for --controller; empty without a controller.
  std::string Address() const { return binary.empty() ? "" : "unix://" + socket; }
};

// The lab description (DIR/lab.json) that `faultline lab ...` and the other commands read.
// Written before anything is created and updated as bring-up proceeds, so `lab down` can find
// everything even after `lab up` died halfway.
struct LabInfo {
  std::string name;
  std::string dir;
  std::string state;   // "creating" until every member answers health, then "up"
  std::string subnet;  // "10.213.7.0/24"
  std::string bridge;
  std::string bridge_address;  // the host's address on the lab bridge (.1)
  // An IPv6 lab (--ipv6): etcd listens and peers on a ULA /64 only (members keep their IPv4
  // address too, so dual-stack targets can be tried). Empty subnet6 otherwise.
  bool ipv6 = false;
  std::string subnet6;          // "fd00:fa17:213:7::/64"
  std::string bridge_address6;  // "fd00:fa17:213:7::1"
  std::string etcd;             // etcd binary
  std::string etcd_version;     // what `etcd --version` said at `lab up` ("3.5.16")
  std::map<std::string, std::string> etcd_flags;  // extra flags given to every member
  std::vector<std::string> etcd_flags_dropped;    // asked for, but this etcd version lacks them
  std::string agent;  // faultline-agent binary; empty when etcd runs without agents
  int64_t created_unix = 0;
  int creator_pid = 0;
  std::vector<MemberInfo> members;
  ControllerInfo controller;
  bool operator==(const LabInfo&) const = default;

  // "http://A:2379,http://B:2379,..." for etcdctl --endpoints.
  std::string Endpoints() const;
  const MemberInfo* Member(std::string_view name) const;
};

std::string ToJson(const LabInfo& info);
// Throws std::invalid_argument naming the field that is missing or has the wrong type.
LabInfo LabFromJson(std::string_view text);

}  // namespace faultline::lab
