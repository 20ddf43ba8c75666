#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faults/sys/prefix.h"

struct nl_sock;

namespace faultline::sys {

// Links, addresses and route lookups over route netlink (libnl-route; libmnl for the one
// request libnl has no call for). One socket, bound to the namespace it was opened in.
class Rtnl {
 public:
  // A socket in the caller's network namespace, or in the namespace at `netns_path`.
  explicit Rtnl(const std::string& netns_path = "");
  ~Rtnl();
  Rtnl(const Rtnl&) = delete;
  Rtnl& operator=(const Rtnl&) = delete;

  // The libnl socket, for requests this class has no call for (tc qdiscs and filters).
  nl_sock* sock() const { return sock_; }

  // 0 if there is no such link.
  int IfIndex(const std::string& name);
  // Every link, or every link of one kind ("ifb", "veth", "bridge"; a physical device has
  // none): (ifindex, name). Names alone do not say what a device is: a lab's bridge may start
  // with the same letters as faultline's IFBs.
  std::vector<std::pair<int, std::string>> Links(std::string_view kind = {});
  void AddBridge(const std::string& name);
  // A veth pair whose `peer` end is created directly in the namespace open at `peer_netns_fd`.
  void AddVeth(const std::string& name, const std::string& peer, int peer_netns_fd);
  void SetMaster(const std::string& name, const std::string& master);
  void SetUp(const std::string& name);
  // True once `name` has carrier (a veth: both ends up); false if it has none or does not exist.
  bool Carrier(const std::string& name);
  void AddAddress(const std::string& name, uint32_t address, int prefix_len);
  // Either family. An IPv6 address is added without duplicate address detection, so it can be
  // bound at once (namespaced labs own their link; nothing else can hold the address).
  void AddAddress(const std::string& name, const IpAddr& address, int prefix_len);
  // Deletes a link (a veth takes its peer with it); false if it did not exist.
  bool DeleteLink(const std::string& name);
  // IPv4 prefixes in use here: every route's destination and every address's subnet.
  std::vector<Prefix> UsedPrefixes();

 private:
  nl_sock* sock_ = nullptr;
  std::string where_;
};

// The interface index the kernel would send a packet to `dst` through (RTM_GETROUTE), in the
// caller's namespace. Throws if there is no route.
int RouteOutputIfIndex(uint32_t dst);
int RouteOutputIfIndex(const IpAddr& dst);

}  // namespace faultline::sys
