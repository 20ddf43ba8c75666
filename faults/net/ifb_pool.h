#pragma once

// A pool of idle IFB devices owned by one agent, so a tc-backend fault neither creates nor
// deletes a net device: deleting one (RTM_DELLINK) waits for RCU grace periods, 11-14 ms here,
// which was most of a fault's revert.
//
// Life of a pooled IFB:
//  - created ahead by Fill() (or on demand when every idle one is taken), named
//    kIfbPoolPrefix + 8 hex digits, with an alias naming its owner (pid and start time);
//  - handed to a fault by Acquire(): down, no root qdisc, no clsact/ingress qdisc, no filters;
//    the fault puts its root qdisc on it and brings it up;
//  - given back by Release() once the fault's redirects are gone: brought down (which drops the
//    packets its qdisc still held), root and clsact/ingress qdiscs deleted (taking their classes
//    and filters with them). If that reset fails, or the pool already holds `idle_max` idle
//    devices, the device is deleted instead;
//  - deleted by Drain() and by the destructor (the agent stops);
//  - after a crash, deleted by the net family's Sweep: its owner is dead (OwnerAlive).
// Thread-safe. Netlink requests of Acquire/Release go through the caller's socket (the fault's),
// which must be in the pool's network namespace.

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "faults/sys/rtnl.h"
#include "faults/sys/unique_fd.h"

namespace faultline::faults::net {

// Pooled IFBs start with this (which itself starts with kIfbPrefix, so the family's device
// discovery skips them and its sweep looks at them).
inline constexpr char kIfbPoolPrefix[] = "flbpool";

struct PooledIfb {
  std::string name;
  int index = 0;
};

class IfbPool {
 public:
  // Keeps up to `idle_max` idle devices, in the network namespace of the calling thread.
  explicit IfbPool(int idle_max);
  ~IfbPool();
  IfbPool(const IfbPool&) = delete;
  IfbPool& operator=(const IfbPool&) = delete;

  int idle_max() const { return idle_max_; }
  // Creates idle devices until there are idle_max. Returns a line saying what it created (none
  // if nothing was missing); throws (keeping what it had created) if the kernel refuses.
  std::vector<std::string> Fill();
  // A clean, down IFB, now in use: an idle one, or a new one.
  PooledIfb Acquire(sys::Rtnl& nl);
  // Takes back an IFB this pool handed out: resets it and keeps it idle, or deletes it. Returns
  // false (and does nothing) if `name` is not one of this pool's devices in use.
  bool Release(sys::Rtnl& nl, const std::string& name);
  // Deletes every idle device. Returns what it deleted.
  std::vector<std::string> Drain();

  std::vector<std::string> Idle() const;
  size_t InUse() const;

 private:
  PooledIfb Create(sys::Rtnl& nl);

  const int idle_max_;
  sys::UniqueFd netns_;  // where the devices live, for Fill/Drain from any thread
  std::string owner_;    // the alias every device carries
  mutable std::mutex mu_;
  std::vector<PooledIfb> idle_;
  std::set<std::string> in_use_;
};

// The alias IfbPool gives its devices: "faultline ifb pool pid P start S".
std::string PoolOwnerAlias(int pid, uint64_t start_time);
// True if `alias` is a pool owner alias naming a process that is alive (same pid, same start
// time). A pooled IFB whose owner is alive is that agent's, idle or in use: a sweep leaves it.
bool OwnerAlive(const std::string& alias);
// The alias of link `name`, "" if it has none or does not exist.
std::string LinkAlias(sys::Rtnl& nl, const std::string& name);

}  // namespace faultline::faults::net
