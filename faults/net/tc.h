#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "faults/net/spec.h"
#include "faults/sys/rtnl.h"

namespace faultline::faults::net {

// IFB devices faultline owns start with kIfbPrefix: "flb" + fault id ("flb1a2b3c4d") for one
// made per fault, kIfbPoolPrefix + hex for an agent's pooled ones (ifb_pool.h).
inline constexpr char kIfbPrefix[] = "flb";
// Filter priorities faultline uses on clsact: each fault takes two consecutive ones (its
// exemptions, then its redirects) from this range, so a sweep can find them.
inline constexpr uint16_t kFirstPrio = 0xFA00;
inline constexpr uint16_t kLastPrio = 0xFAFF;

// One 32-bit u32 match key: (word at `off` in the IP header & mask) == value (host order).
// Filters are added for every protocol (ETH_P_ALL) and start with a key on the IP version, so
// IPv4 and IPv6 filters of one fault share its priorities.
struct U32Key {
  uint32_t value;
  uint32_t mask;
  int off;
  bool operator==(const U32Key&) const = default;
};

// The filters (each a list of keys, all of which must match) that select the packets of `m`
// in one direction, for each family of m.families(). IPv4 ports are read at offset 20 and
// require a 20-byte header (no options); IPv6 ports at offset 40, which assumes no extension
// headers (such packets are not matched). Port ranges become mask blocks.
std::vector<std::vector<U32Key>> BuildU32Filters(const Match& m, bool egress);
// Filters selecting exempt traffic (either address or either port), which pass untouched.
std::vector<std::vector<U32Key>> BuildExemptFilters(const std::vector<uint16_t>& ports,
                                                    const std::vector<Cidr>& cidrs);

// The route netlink socket tc requests go through: faults/sys's, one per user, not shared
// between threads. Links are its own calls (IfIndex, Links, DeleteLink).
using Rtnl = sys::Rtnl;

// Creates IFB `name` (or reuses it) and brings it up. Returns its ifindex.
int CreateIfb(Rtnl& nl, const std::string& name);
// Brings link `ifindex` up or down.
void SetLinkUp(Rtnl& nl, int ifindex, bool up);

// Adds clsact to `ifindex`. Returns false if it was already there (someone else's to keep).
bool AddClsact(Rtnl& nl, int ifindex);
void DeleteClsact(Rtnl& nl, int ifindex);
// Filter priorities present on clsact egress or ingress of `ifindex`.
std::vector<uint16_t> FilterPrios(Rtnl& nl, int ifindex, bool ingress);
// Removes every filter at `prio` on that hook. Absent is not an error.
void DeleteFilters(Rtnl& nl, int ifindex, bool ingress, uint16_t prio);
// Adds a u32 filter at `prio`: redirect to `to_ifindex` (mirred), or let pass if 0.
void AddU32Filter(Rtnl& nl, int ifindex, bool ingress, uint16_t prio,
                  const std::vector<U32Key>& keys, int to_ifindex);

// Root qdiscs on an IFB (handle 1:), replacing whatever root it had.
void SetRootNetem(Rtnl& nl, int ifindex, const NetSpec& s);
void SetRootTbf(Rtnl& nl, int ifindex, const NetSpec& s);
void SetRootHtb(Rtnl& nl, int ifindex, uint64_t rate);
void DeleteRootQdisc(Rtnl& nl, int ifindex);
// Counters of the root qdisc (packets it passed, dropped, and holds now).
struct QdiscStats {
  int64_t packets = 0, drops = 0, backlog = 0;
};
QdiscStats RootQdiscStats(Rtnl& nl, int ifindex);
// Kinds of every qdisc on `ifindex` ("tbf", "clsact", ...), for checks from outside a fault.
std::vector<std::string> QdiscKinds(Rtnl& nl, int ifindex);

}  // namespace faultline::faults::net
