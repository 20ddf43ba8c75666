#include "faults/sys/rtnl.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <time.h>

#include <memory>

#include "faults/sys/error.h"
#include "faults/sys/netns.h"

namespace faultline::sys {
namespace {

struct LinkPut {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkPut>;
struct AddrPut {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct NlAddrPut {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
struct CachePut {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
using CachePtr = std::unique_ptr<nl_cache, CachePut>;

void Check(int err, const std::string& what) {
  if (err < 0) throw Error(what + ": " + nl_geterror(err));
}

}  // namespace

Rtnl::Rtnl(const std::string& netns_path) : where_(netns_path.empty() ? "" : " in " + netns_path) {
  sock_ = nl_socket_alloc();
  if (sock_ == nullptr) throw Error("netlink: out of memory");
  int err = 0;
  auto connect = [&] { err = nl_connect(sock_, NETLINK_ROUTE); };
  if (netns_path.empty()) {
    connect();
  } else {
    NetNs::RunIn(netns_path, connect);
  }
  if (err < 0) {
    nl_socket_free(sock_);
    throw Error("netlink connect" + where_ + ": " + nl_geterror(err));
  }
}

Rtnl::~Rtnl() { nl_socket_free(sock_); }

int Rtnl::IfIndex(const std::string& name) {
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_, 0, name.c_str(), &raw);
  if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) return 0;
  Check(err, "get link " + name + where_);
  LinkPtr link(raw);
  return rtnl_link_get_ifindex(link.get());
}

std::vector<std::pair<int, std::string>> Rtnl::Links(std::string_view kind) {
  nl_cache* raw = nullptr;
  Check(rtnl_link_alloc_cache(sock_, AF_UNSPEC, &raw), "list links" + where_);
  CachePtr cache(raw);
  std::vector<std::pair<int, std::string>> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* l = reinterpret_cast<rtnl_link*>(o);
    if (!kind.empty()) {
      const char* type = rtnl_link_get_type(l);
      if (type == nullptr || kind != type) continue;
    }
    out.emplace_back(rtnl_link_get_ifindex(l), rtnl_link_get_name(l));
  }
  return out;
}

void Rtnl::AddBridge(const std::string& name) {
  LinkPtr link(rtnl_link_bridge_alloc());
  rtnl_link_set_name(link.get(), name.c_str());
  Check(rtnl_link_add(sock_, link.get(), NLM_F_CREATE | NLM_F_EXCL), "create bridge " + name);
}

void Rtnl::AddVeth(const std::string& name, const std::string& peer_name, int peer_netns_fd) {
  LinkPtr link(rtnl_link_veth_alloc());
  if (!link) throw Error("veth: out of memory");
  rtnl_link_set_name(link.get(), name.c_str());
  LinkPtr peer(rtnl_link_veth_get_peer(link.get()));
  rtnl_link_set_name(peer.get(), peer_name.c_str());
  rtnl_link_set_ns_fd(peer.get(), peer_netns_fd);
  Check(rtnl_link_add(sock_, link.get(), NLM_F_CREATE | NLM_F_EXCL),
        "create veth " + name + " (peer " + peer_name + ")");
}

void Rtnl::SetMaster(const std::string& name, const std::string& master) {
  int m = IfIndex(master);
  if (m == 0) throw Error("set master of " + name + ": no link " + master);
  rtnl_link* raw = nullptr;
  Check(rtnl_link_get_kernel(sock_, 0, name.c_str(), &raw), "get link " + name + where_);
  LinkPtr orig(raw);
  LinkPtr change(rtnl_link_alloc());
  rtnl_link_set_master(change.get(), m);
  Check(rtnl_link_change(sock_, orig.get(), change.get(), 0), "enslave " + name + " to " + master);
}

void Rtnl::SetUp(const std::string& name) {
  rtnl_link* raw = nullptr;
  Check(rtnl_link_get_kernel(sock_, 0, name.c_str(), &raw), "get link " + name + where_);
  LinkPtr orig(raw);
  LinkPtr change(rtnl_link_alloc());
  rtnl_link_set_flags(change.get(), IFF_UP);
  Check(rtnl_link_change(sock_, orig.get(), change.get(), 0), "set " + name + " up" + where_);
}

bool Rtnl::Carrier(const std::string& name) {
  rtnl_link* raw = nullptr;
  if (rtnl_link_get_kernel(sock_, 0, name.c_str(), &raw) < 0 || raw == nullptr) return false;
  LinkPtr link(raw);
  return rtnl_link_get_carrier(link.get()) != 0;
}

void Rtnl::AddAddress(const std::string& name, uint32_t address, int prefix_len) {
  AddAddress(name, IpAddr::V4(address), prefix_len);
}

void Rtnl::AddAddress(const std::string& name, const IpAddr& address, int prefix_len) {
  int idx = IfIndex(name);
  if (idx == 0) throw Error("add address: no link " + name + where_);
  std::unique_ptr<rtnl_addr, AddrPut> addr(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(addr.get(), idx);
  std::unique_ptr<nl_addr, NlAddrPut> local(
      nl_addr_build(address.family(), address.bytes.data(), address.size()));
  nl_addr_set_prefixlen(local.get(), prefix_len);
  Check(rtnl_addr_set_local(addr.get(), local.get()), "address");
  if (address.v6) rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
  std::string text = FormatIp(address) + "/" + std::to_string(prefix_len);
  Check(rtnl_addr_add(sock_, addr.get(), 0), "add " + text + " to " + name + where_);
}

bool Rtnl::DeleteLink(const std::string& name) {
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_, 0, name.c_str(), &raw);
  if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) return false;
  Check(err, "get link " + name + where_);
  LinkPtr link(raw);
  err = rtnl_link_delete(sock_, link.get());
  if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) return false;
  Check(err, "delete link " + name + where_);
  return true;
}

std::vector<Prefix> Rtnl::UsedPrefixes() {
  std::vector<Prefix> out;
  nl_cache* raw = nullptr;
  Check(rtnl_route_alloc_cache(sock_, AF_INET, 0, &raw), "list routes");
  CachePtr routes(raw);
  for (nl_object* o = nl_cache_get_first(routes.get()); o; o = nl_cache_get_next(o)) {
    nl_addr* dst = rtnl_route_get_dst(reinterpret_cast<rtnl_route*>(o));
    if (dst == nullptr || nl_addr_get_family(dst) != AF_INET) continue;
    uint32_t be = 0;
    if (nl_addr_get_len(dst) == 4) memcpy(&be, nl_addr_get_binary_addr(dst), 4);
    out.push_back({ntohl(be), static_cast<int>(nl_addr_get_prefixlen(dst))});
  }
  raw = nullptr;
  Check(rtnl_addr_alloc_cache(sock_, &raw), "list addresses");
  CachePtr addrs(raw);
  for (nl_object* o = nl_cache_get_first(addrs.get()); o; o = nl_cache_get_next(o)) {
    nl_addr* local = rtnl_addr_get_local(reinterpret_cast<rtnl_addr*>(o));
    if (local == nullptr || nl_addr_get_family(local) != AF_INET || nl_addr_get_len(local) != 4) {
      continue;
    }
    uint32_t be = 0;
    memcpy(&be, nl_addr_get_binary_addr(local), 4);
    int len = static_cast<int>(nl_addr_get_prefixlen(local));
    uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
    out.push_back({ntohl(be) & mask, len});
  }
  return out;
}

int RouteOutputIfIndex(uint32_t dst) { return RouteOutputIfIndex(IpAddr::V4(dst)); }

int RouteOutputIfIndex(const IpAddr& dst) {
  struct MnlClose {
    void operator()(mnl_socket* s) const { mnl_socket_close(s); }
  };
  std::unique_ptr<mnl_socket, MnlClose> nl(mnl_socket_open(NETLINK_ROUTE));
  if (!nl) ThrowErrno("route lookup: netlink socket");
  if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0) ThrowErrno("route lookup: bind");
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  unsigned seq = static_cast<unsigned>(time(nullptr));
  nlh->nlmsg_seq = seq;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<unsigned char>(dst.family());
  rtm->rtm_dst_len = static_cast<unsigned char>(dst.bits());
  mnl_attr_put(nlh, RTA_DST, dst.size(), dst.bytes.data());
  if (mnl_socket_sendto(nl.get(), nlh, nlh->nlmsg_len) < 0) ThrowErrno("route lookup: send");
  ssize_t n = mnl_socket_recvfrom(nl.get(), buf.data(), buf.size());
  if (n < 0) ThrowErrno("route lookup: receive");
  int oif = 0;
  auto cb = [](const nlmsghdr* h, void* data) -> int {
    mnl_attr_parse(
        h, sizeof(rtmsg),
        [](const nlattr* a, void* d) -> int {
          if (mnl_attr_get_type(a) == RTA_OIF) *static_cast<int*>(d) = mnl_attr_get_u32(a);
          return MNL_CB_OK;
        },
        data);
    return MNL_CB_OK;
  };
  if (mnl_cb_run(buf.data(), n, seq, mnl_socket_get_portid(nl.get()), cb, &oif) < 0) {
    ThrowErrno("route to " + FormatIp(dst));
  }
  if (oif == 0) throw Error("route to " + FormatIp(dst) + ": no output interface");
  return oif;
}

}  // namespace faultline::sys
