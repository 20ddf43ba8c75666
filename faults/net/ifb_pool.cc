#include "faults/net/ifb_pool.h"

#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/pkt_sched.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/inet6.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "faults/core/errors.h"
#include "faults/net/tc.h"
#include "faults/process/proc.h"
#include "faults/sys/error.h"

namespace faultline::faults::net {
namespace {

struct LinkPut {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkPut>;

std::string RandomName() {
  uint32_t r = 0;
  if (getrandom(&r, sizeof r, 0) != sizeof r) ThrowErrno("getrandom");
  char buf[16];
  snprintf(buf, sizeof buf, "%s%08x", kIfbPoolPrefix, r);
  return buf;
}

std::string NetnsPath(const sys::UniqueFd& fd) {
  return "/proc/self/fd/" + std::to_string(fd.get());
}

// Everything a fault may have left on the device, gone; the device down. Throws on the first
// failure (the caller then deletes the device).
void Reset(sys::Rtnl& nl, int index) {
  // Down first: the root qdisc's held packets are dropped and, with the device down, replacing
  // or deleting its qdiscs needs no wait for the transmit path to go quiet.
  SetLinkUp(nl, index, false);
  DeleteRootQdisc(nl, index);
  DeleteClsact(nl, index);  // clsact and ingress share the handle ffff:
}

}  // namespace

std::string PoolOwnerAlias(int pid, uint64_t start_time) {
  return "faultline ifb pool pid " + std::to_string(pid) + " start " + std::to_string(start_time);
}

bool OwnerAlive(const std::string& alias) {
  int pid = 0;
  unsigned long long start = 0;
  if (sscanf(alias.c_str(), "faultline ifb pool pid %d start %llu", &pid, &start) != 2 || pid <= 0)
    return false;
  auto info = process::ReadProc(pid);
  return info && info->start_time == start;
}

std::string LinkAlias(sys::Rtnl& nl, const std::string& name) {
  rtnl_link* raw = nullptr;
  if (rtnl_link_get_kernel(nl.sock(), 0, name.c_str(), &raw) < 0) return "";
  LinkPtr link(raw);
  const char* alias = rtnl_link_get_ifalias(link.get());
  return alias ? alias : "";
}

IfbPool::IfbPool(int idle_max) : idle_max_(idle_max) {
  if (idle_max < 0) throw std::invalid_argument("ifb pool size must not be negative");
  netns_.reset(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!netns_) ThrowErrno("open /proc/thread-self/ns/net");
  auto self = process::ReadProc(getpid());
  if (!self) throw FaultError("ifb pool: cannot read this process's start time");
  owner_ = PoolOwnerAlias(getpid(), self->start_time);
}

IfbPool::~IfbPool() {
  try {
    Drain();
  } catch (const std::exception&) {
    // The agent is going; what is left is swept by the next one (its owner is dead).
  }
}

PooledIfb IfbPool::Create(sys::Rtnl& nl) {
  for (int attempt = 0;; ++attempt) {
    PooledIfb d{RandomName(), 0};
    LinkPtr l(rtnl_link_alloc());
    rtnl_link_set_name(l.get(), d.name.c_str());
    if (int err = rtnl_link_set_type(l.get(), "ifb"); err < 0)
      throw FaultError(std::string("ifb pool: ifb link type: ") + nl_geterror(err));
    // Exclusive: a name another pool (or a crashed agent) holds is never taken over.
    int err = rtnl_link_add(nl.sock(), l.get(), NLM_F_CREATE | NLM_F_EXCL);
    if (err == -NLE_EXIST && attempt < 8) continue;
    if (err < 0) throw FaultError("ifb pool: create " + d.name + ": " + nl_geterror(err));
    d.index = nl.IfIndex(d.name);
    try {
      if (d.index == 0) throw FaultError("ifb pool: " + d.name + " vanished after creation");
      // The owner goes on before the device is handed out: a sweep that sees it alias-less
      // would take it for a crashed agent's.
      LinkPtr change(rtnl_link_alloc());
      rtnl_link_set_ifindex(change.get(), d.index);
      rtnl_link_set_ifalias(change.get(), owner_.c_str());
      // No IPv6 link-local address: otherwise every up sends the device's own ICMPv6 through
      // the fault's root qdisc, counted (and delayed, dropped) as if it were the target's.
      if (int e = rtnl_link_inet6_set_addr_gen_mode(change.get(), IN6_ADDR_GEN_MODE_NONE); e < 0)
        throw FaultError(std::string("ifb pool: addrgenmode: ") + nl_geterror(e));
      if (int e = rtnl_link_change(nl.sock(), change.get(), change.get(), 0); e < 0)
        throw FaultError("ifb pool: set alias of " + d.name + ": " + nl_geterror(e));
    } catch (...) {
      nl.DeleteLink(d.name);
      throw;
    }
    return d;
  }
}

std::vector<std::string> IfbPool::Fill() {
  std::unique_lock lock(mu_);
  if (static_cast<int>(idle_.size()) >= idle_max_) return {};
  lock.unlock();
  sys::Rtnl nl(NetnsPath(netns_));
  std::string names;
  for (;;) {
    lock.lock();
    if (static_cast<int>(idle_.size()) >= idle_max_) break;
    lock.unlock();
    PooledIfb d = Create(nl);
    names += (names.empty() ? "" : " ") + d.name;
    lock.lock();
    idle_.push_back(std::move(d));
    lock.unlock();
  }
  return {"ifb pool: " + std::to_string(idle_.size()) + " idle IFBs (created " + names + ")"};
}

PooledIfb IfbPool::Acquire(sys::Rtnl& nl) {
  for (;;) {
    std::unique_lock lock(mu_);
    if (idle_.empty()) break;
    PooledIfb d = std::move(idle_.back());
    idle_.pop_back();
    lock.unlock();
    // Someone (an administrator, a sweep that misjudged) may have deleted it meanwhile.
    if (nl.IfIndex(d.name) != d.index) continue;
    lock.lock();
    in_use_.insert(d.name);
    return d;
  }
  PooledIfb d = Create(nl);
  std::lock_guard lock(mu_);
  in_use_.insert(d.name);
  return d;
}

bool IfbPool::Release(sys::Rtnl& nl, const std::string& name) {
  {
    std::lock_guard lock(mu_);
    if (!in_use_.contains(name)) return false;
  }
  const int index = nl.IfIndex(name);
  bool keep = index > 0;
  if (keep) {
    try {
      Reset(nl, index);
    } catch (const std::exception&) {
      keep = false;  // not known clean: never handed to another fault
    }
  }
  std::unique_lock lock(mu_);
  in_use_.erase(name);
  if (keep && static_cast<int>(idle_.size()) < idle_max_) {
    idle_.push_back({name, index});
    return true;
  }
  lock.unlock();
  if (index > 0) nl.DeleteLink(name);
  return true;
}

std::vector<std::string> IfbPool::Drain() {
  std::vector<PooledIfb> idle;
  {
    std::lock_guard lock(mu_);
    idle.swap(idle_);
  }
  std::vector<std::string> out;
  if (idle.empty()) return out;
  sys::Rtnl nl(NetnsPath(netns_));
  for (const PooledIfb& d : idle)
    if (nl.DeleteLink(d.name)) out.push_back("ifb pool: deleted " + d.name);
  return out;
}

std::vector<std::string> IfbPool::Idle() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const PooledIfb& d : idle_) out.push_back(d.name);
  return out;
}

size_t IfbPool::InUse() const {
  std::lock_guard lock(mu_);
  return in_use_.size();
}

}  // namespace faultline::faults::net
