#include "faults/net/tc.h"

#include <arpa/inet.h>
#include <linux/gen_stats.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netlink/netlink.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/class.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/qdisc/netem.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "faults/core/errors.h"

namespace faultline::faults::net {
namespace {

[[noreturn]] void Fail(const std::string& what, int err) {
  throw FaultError("tc: " + what + ": " + nl_geterror(err));
}

uint32_t ClsactParent(bool ingress) {
  return TC_H_MAKE(TC_H_CLSACT, ingress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
}

// netem probabilities are fractions of 2^32.
int Prob(double percent) {
  return static_cast<int>(static_cast<uint32_t>(std::min(percent, 100.0) / 100 * UINT32_MAX));
}

template <typename T, void (*Free)(T*)>
struct Owned {
  T* p;
  explicit Owned(T* x) : p(x) {}
  ~Owned() { Free(p); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
};
void FreeQdisc(rtnl_qdisc* q) { rtnl_qdisc_put(q); }
void FreeCls(rtnl_cls* c) { rtnl_cls_put(c); }
void FreeLink(rtnl_link* l) { rtnl_link_put(l); }
void FreeClass(rtnl_class* c) { rtnl_class_put(c); }
void FreeAct(rtnl_act* a) { rtnl_act_put(a); }
using Qdisc = Owned<rtnl_qdisc, FreeQdisc>;
using Cls = Owned<rtnl_cls, FreeCls>;
using Link = Owned<rtnl_link, FreeLink>;
using Class = Owned<rtnl_class, FreeClass>;
using Act = Owned<rtnl_act, FreeAct>;

// The clsact qdisc of `ifindex`, as both adding and deleting it name it.
rtnl_qdisc* ClsactQdisc(int ifindex) {
  rtnl_qdisc* q = rtnl_qdisc_alloc();
  rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
  rtnl_tc_set_parent(TC_CAST(q), TC_H_CLSACT);
  rtnl_tc_set_handle(TC_CAST(q), TC_H_MAKE(TC_H_CLSACT, 0));
  rtnl_tc_set_kind(TC_CAST(q), "clsact");
  return q;
}

// Where u32 finds things in each family's header. IPv6 offsets assume no extension headers
// (as IPv4 ports assume no options): such packets are not matched.
struct Layout {
  U32Key version;  // the version nibble: filters share ETH_P_ALL, so this tells families apart
  U32Key version_ports;  // the same, also requiring the header length ports are read at
  int src, dst;          // address offsets
  int words;             // 32-bit words per address
  int proto_off, proto_shift;
  int ports;  // transport ports' word (source << 16 | destination)
};

const Layout& LayoutOf(bool v6) {
  static const Layout v4{
      {0x40000000, 0xf0000000, 0}, {0x45000000, 0xff000000, 0}, 12, 16, 1, 8, 16, 20};
  static const Layout v6l{
      {0x60000000, 0xf0000000, 0}, {0x60000000, 0xf0000000, 0}, 8, 24, 4, 4, 8, 40};
  return v6 ? v6l : v4;
}

// The keys that match `c` at the address starting at `off` (none for a /0).
std::vector<U32Key> AddrKeys(const Cidr& c, int off) {
  std::vector<U32Key> out;
  for (int i = 0; i < LayoutOf(c.v6()).words; ++i)
    if (c.MaskWord(i) != 0) out.push_back({c.Word(i) & c.MaskWord(i), c.MaskWord(i), off + 4 * i});
  return out;
}

U32Key ProtoKey(const Layout& l, uint8_t proto) {
  return {uint32_t{proto} << l.proto_shift, uint32_t{0xff} << l.proto_shift, l.proto_off};
}

}  // namespace

std::vector<std::vector<U32Key>> BuildU32Filters(const Match& m, bool egress) {
  std::vector<std::vector<U32Key>> out;
  for (bool v6 : m.families()) {
    const Layout& l = LayoutOf(v6);
    const int remote = egress ? l.dst : l.src, local = egress ? l.src : l.dst;
    std::vector<std::vector<U32Key>> base{{m.ports.empty() ? l.version : l.version_ports}};
    // Each alternative is a group of keys that must all match.
    auto cross = [&](const std::vector<std::vector<U32Key>>& alternatives) {
      if (alternatives.empty()) return;
      std::vector<std::vector<U32Key>> next;
      for (auto& f : base)
        for (const auto& keys : alternatives) {
          next.push_back(f);
          next.back().insert(next.back().end(), keys.begin(), keys.end());
        }
      base = std::move(next);
    };
    auto addrs = [](const std::vector<Cidr>& cs, int off) {
      std::vector<std::vector<U32Key>> alts;
      for (const Cidr& c : cs) alts.push_back(AddrKeys(c, off));
      return alts;
    };
    cross(addrs(Match::OfFamily(m.to, v6), remote));
    cross(addrs(Match::OfFamily(m.from, v6), local));
    std::vector<std::vector<U32Key>> protos;
    for (uint8_t p : m.l4protos(v6)) protos.push_back({ProtoKey(l, p)});
    cross(protos);
    // Source and destination ports share one word.
    std::vector<std::vector<U32Key>> ports;
    for (PortRange r : m.ports)
      for (MaskedPort mp : PortRangeToMasks(r)) {
        ports.push_back({{uint32_t{mp.value} << 16, uint32_t{mp.mask} << 16, l.ports}});
        ports.push_back({{mp.value, mp.mask, l.ports}});
      }
    cross(ports);
    out.insert(out.end(), base.begin(), base.end());
  }
  return out;
}

std::vector<std::vector<U32Key>> BuildExemptFilters(const std::vector<uint16_t>& ports,
                                                    const std::vector<Cidr>& cidrs) {
  std::vector<std::vector<U32Key>> out;
  for (const Cidr& c : cidrs) {
    const Layout& l = LayoutOf(c.v6());
    for (int off : {l.src, l.dst}) {
      std::vector<U32Key> f{l.version};
      for (const U32Key& k : AddrKeys(c, off)) f.push_back(k);
      out.push_back(std::move(f));
    }
  }
  for (bool v6 : {false, true}) {
    const Layout& l = LayoutOf(v6);
    for (uint16_t p : ports)
      for (uint8_t proto : {uint8_t{IPPROTO_TCP}, uint8_t{IPPROTO_UDP}}) {
        out.push_back(
            {l.version_ports, ProtoKey(l, proto), {uint32_t{p} << 16, 0xffff0000, l.ports}});
        out.push_back({l.version_ports, ProtoKey(l, proto), {p, 0x0000ffff, l.ports}});
      }
  }
  return out;
}

int CreateIfb(Rtnl& nl, const std::string& name) {
  Link l(rtnl_link_alloc());
  rtnl_link_set_name(l.p, name.c_str());
  if (int err = rtnl_link_set_type(l.p, "ifb"); err < 0) Fail("ifb type", err);
  int err = rtnl_link_add(nl.sock(), l.p, NLM_F_CREATE | NLM_F_EXCL);
  if (err < 0 && err != -NLE_EXIST) Fail("create ifb " + name, err);
  const int index = nl.IfIndex(name);
  if (index == 0) throw FaultError("tc: ifb " + name + " vanished after creation");
  SetLinkUp(nl, index, true);
  return index;
}

void SetLinkUp(Rtnl& nl, int ifindex, bool up) {
  Link l(rtnl_link_alloc());
  rtnl_link_set_ifindex(l.p, ifindex);
  if (up) {
    rtnl_link_set_flags(l.p, IFF_UP);
  } else {
    rtnl_link_unset_flags(l.p, IFF_UP);
  }
  if (int e = rtnl_link_change(nl.sock(), l.p, l.p, 0); e < 0)
    Fail(std::string("set link ") + std::to_string(ifindex) + (up ? " up" : " down"), e);
}

bool AddClsact(Rtnl& nl, int ifindex) {
  Qdisc q(ClsactQdisc(ifindex));
  int err = rtnl_qdisc_add(nl.sock(), q.p, NLM_F_CREATE | NLM_F_EXCL);
  if (err == -NLE_EXIST) return false;
  if (err < 0) Fail("add clsact", err);
  return true;
}

void DeleteClsact(Rtnl& nl, int ifindex) {
  Qdisc q(ClsactQdisc(ifindex));
  int err = rtnl_qdisc_delete(nl.sock(), q.p);
  if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV && err != -NLE_INVAL)
    Fail("delete clsact", err);
}

std::vector<uint16_t> FilterPrios(Rtnl& nl, int ifindex, bool ingress) {
  nl_cache* cache = nullptr;
  std::vector<uint16_t> out;
  if (rtnl_cls_alloc_cache(nl.sock(), ifindex, ClsactParent(ingress), &cache) < 0) return out;
  nl_cache_foreach(
      cache,
      [](nl_object* o, void* arg) {
        static_cast<std::vector<uint16_t>*>(arg)->push_back(
            rtnl_cls_get_prio(reinterpret_cast<rtnl_cls*>(o)));
      },
      &out);
  nl_cache_free(cache);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void DeleteFilters(Rtnl& nl, int ifindex, bool ingress, uint16_t prio) {
  Cls c(rtnl_cls_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.p), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.p), ClsactParent(ingress));
  rtnl_tc_set_kind(TC_CAST(c.p), "u32");
  rtnl_cls_set_prio(c.p, prio);
  // 0: whatever protocol the filters at this priority carry (ETH_P_ALL now, ETH_P_IP from an
  // agent before IPv6), so a journal or sweep of either removes them.
  rtnl_cls_set_protocol(c.p, 0);
  int err = rtnl_cls_delete(nl.sock(), c.p, 0);
  if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV && err != -NLE_INVAL)
    Fail("delete filters prio " + std::to_string(prio), err);
}

void AddU32Filter(Rtnl& nl, int ifindex, bool ingress, uint16_t prio,
                  const std::vector<U32Key>& keys, int to_ifindex) {
  Cls c(rtnl_cls_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.p), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.p), ClsactParent(ingress));
  rtnl_tc_set_kind(TC_CAST(c.p), "u32");
  rtnl_cls_set_prio(c.p, prio);
  // One priority holds filters of one protocol only; ETH_P_ALL lets IPv4 and IPv6 filters
  // share it, each told apart by its version-nibble key.
  rtnl_cls_set_protocol(c.p, ETH_P_ALL);
  for (const U32Key& k : keys)
    if (int err = rtnl_u32_add_key(c.p, htonl(k.value), htonl(k.mask), k.off, 0); err < 0)
      Fail("u32 key", err);
  // Without the terminal flag u32 would match but never run the action or return a class.
  rtnl_u32_set_cls_terminal(c.p);
  if (to_ifindex > 0) {
    // The filter takes its own reference to the action (rtnl_u32_add_action); ours goes at the
    // end of this scope — before, every redirect filter leaked it (LeakSanitizer, per fault).
    Act act(rtnl_act_alloc());
    rtnl_tc_set_kind(TC_CAST(act.p), "mirred");
    rtnl_mirred_set_action(act.p, TCA_EGRESS_REDIR);
    rtnl_mirred_set_policy(act.p, TC_ACT_STOLEN);
    rtnl_mirred_set_ifindex(act.p, static_cast<uint32_t>(to_ifindex));
    if (int err = rtnl_u32_add_action(c.p, act.p); err < 0) Fail("u32 action", err);
  } else {
    // A class id and no action ends classification with TC_ACT_OK: the packet passes as is.
    // (act_gact would say the same, but minimal kernels, this one included, lack it.)
    rtnl_u32_set_classid(c.p, TC_HANDLE(1, 1));
  }
  if (int err = rtnl_cls_add(nl.sock(), c.p, NLM_F_CREATE); err < 0)
    Fail("add u32 filter prio " + std::to_string(prio), err);
}

namespace {

rtnl_qdisc* RootQdisc(int ifindex, const char* kind) {
  rtnl_qdisc* q = rtnl_qdisc_alloc();
  rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
  rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
  rtnl_tc_set_handle(TC_CAST(q), TC_HANDLE(1, 0));
  rtnl_tc_set_kind(TC_CAST(q), kind);
  return q;
}

void AddRoot(Rtnl& nl, rtnl_qdisc* q, const char* kind) {
  if (int err = rtnl_qdisc_add(nl.sock(), q, NLM_F_CREATE | NLM_F_REPLACE); err < 0)
    Fail(std::string("add ") + kind, err);
}

}  // namespace

void SetRootNetem(Rtnl& nl, int ifindex, const NetSpec& s) {
  Qdisc q(RootQdisc(ifindex, "netem"));
  using v1::NetFault;
  const int corr = Prob(s.correlation);
  rtnl_netem_set_limit(q.p, 10000);
  switch (s.action) {
    case NetFault::DELAY:
      rtnl_netem_set_delay(q.p, static_cast<int>(s.delay.count() / 1000));
      rtnl_netem_set_jitter(q.p, static_cast<int>(s.jitter.count() / 1000));
      rtnl_netem_set_delay_correlation(q.p, corr);
      if (s.jitter.count() > 0 && s.distribution != NetFault::UNIFORM) {
        const char* name = s.distribution == NetFault::NORMAL   ? "normal"
                           : s.distribution == NetFault::PARETO ? "pareto"
                                                                : "paretonormal";
        if (int err = rtnl_netem_set_delay_distribution(q.p, name); err < 0)
          Fail(std::string("netem distribution table ") + name, err);
      }
      break;
    case NetFault::LOSS:
      rtnl_netem_set_loss(q.p, Prob(s.percent));
      rtnl_netem_set_loss_correlation(q.p, corr);
      break;
    case NetFault::DUPLICATE:
      rtnl_netem_set_duplicate(q.p, Prob(s.percent));
      rtnl_netem_set_duplicate_correlation(q.p, corr);
      break;
    case NetFault::CORRUPT:
      rtnl_netem_set_corruption_probability(q.p, Prob(s.percent));
      rtnl_netem_set_corruption_correlation(q.p, corr);
      break;
    case NetFault::REORDER:
      rtnl_netem_set_delay(q.p, static_cast<int>(s.delay.count() / 1000));
      rtnl_netem_set_reorder_probability(q.p, Prob(s.percent));
      rtnl_netem_set_reorder_correlation(q.p, corr);
      if (s.gap > 0) rtnl_netem_set_gap(q.p, static_cast<int>(s.gap));
      break;
    default:
      throw FaultError("tc: netem cannot serve " + ActionName(s.action));
  }
  AddRoot(nl, q.p, "netem");
}

void SetRootTbf(Rtnl& nl, int ifindex, const NetSpec& s) {
  Qdisc q(RootQdisc(ifindex, "tbf"));
  // Defaults as an SRE would pick: a 10 ms bucket (at least a few full frames) and 100 ms of queue.
  const uint64_t burst = s.burst ? s.burst : std::max<uint64_t>(s.rate / 100, 4500);
  const uint64_t limit = s.limit ? s.limit : burst + s.rate / 10;
  rtnl_qdisc_tbf_set_limit(q.p, static_cast<int>(limit));
  rtnl_qdisc_tbf_set_rate(q.p, static_cast<int>(s.rate), static_cast<int>(burst), 0);
  if (s.peakrate) {
    if (int err = rtnl_qdisc_tbf_set_peakrate(q.p, static_cast<int>(s.peakrate), 1514, 0); err < 0)
      Fail("tbf peakrate", err);
  }
  AddRoot(nl, q.p, "tbf");
}

void SetRootHtb(Rtnl& nl, int ifindex, uint64_t rate) {
  Qdisc q(RootQdisc(ifindex, "htb"));
  rtnl_htb_set_defcls(q.p, 1);
  AddRoot(nl, q.p, "htb");
  Class c(rtnl_class_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.p), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.p), TC_HANDLE(1, 0));
  rtnl_tc_set_handle(TC_CAST(c.p), TC_HANDLE(1, 1));
  rtnl_tc_set_kind(TC_CAST(c.p), "htb");
  rtnl_htb_set_rate(c.p, static_cast<uint32_t>(rate));
  rtnl_htb_set_ceil(c.p, static_cast<uint32_t>(rate));
  if (int err = rtnl_class_add(nl.sock(), c.p, NLM_F_CREATE); err < 0) Fail("add htb class", err);
}

void DeleteRootQdisc(Rtnl& nl, int ifindex) {
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.p), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.p), TC_H_ROOT);
  int err = rtnl_qdisc_delete(nl.sock(), q.p);
  if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV && err != -NLE_INVAL)
    Fail("delete root qdisc", err);
}

QdiscStats RootQdiscStats(Rtnl& nl, int ifindex) {
  // A get of the one root qdisc, answered by the kernel's tc_get_qdisc: a revert reads it just
  // before the IFB goes, and a dump of every device's qdiscs (libnl's cache) cost ~0.1 ms there.
  QdiscStats st;
  // NLM_F_ECHO: the kernel answers a get of one qdisc as a notification, to the TC multicast
  // group, and to the asker only when it asks for the echo.
  nl_msg* msg = nlmsg_alloc_simple(RTM_GETQDISC, NLM_F_ECHO);
  if (msg == nullptr) throw FaultError("tc: root qdisc stats: out of memory");
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex;
  t.tcm_parent = TC_H_ROOT;
  int err = nlmsg_append(msg, &t, sizeof t, NLMSG_ALIGNTO);
  if (err == 0) err = nl_send_auto(nl.sock(), msg);
  nlmsg_free(msg);
  if (err < 0) Fail("root qdisc stats", err);
  nl_cb* cb = nl_cb_clone(nl_socket_get_cb(nl.sock()));
  if (cb == nullptr) throw FaultError("tc: root qdisc stats: out of memory");
  nl_cb_set(
      cb, NL_CB_VALID, NL_CB_CUSTOM,
      [](nl_msg* m, void* arg) -> int {
        auto* out = static_cast<QdiscStats*>(arg);
        nlattr* tb[TCA_MAX + 1];
        if (nlmsg_parse(nlmsg_hdr(m), sizeof(tcmsg), tb, TCA_MAX, nullptr) < 0 ||
            tb[TCA_STATS2] == nullptr) {
          return NL_STOP;
        }
        nlattr* stats[TCA_STATS_MAX + 1];
        if (nla_parse_nested(stats, TCA_STATS_MAX, tb[TCA_STATS2], nullptr) < 0) return NL_STOP;
        if (stats[TCA_STATS_BASIC] != nullptr) {
          gnet_stats_basic b{};
          memcpy(&b, nla_data(stats[TCA_STATS_BASIC]),
                 std::min<size_t>(sizeof b, static_cast<size_t>(nla_len(stats[TCA_STATS_BASIC]))));
          out->packets = b.packets;
        }
        if (stats[TCA_STATS_QUEUE] != nullptr) {
          gnet_stats_queue q{};
          memcpy(&q, nla_data(stats[TCA_STATS_QUEUE]),
                 std::min<size_t>(sizeof q, static_cast<size_t>(nla_len(stats[TCA_STATS_QUEUE]))));
          out->drops = q.drops;
          out->backlog = q.qlen;
        }
        // The kernel's ACK follows in its own message; leave it to nl_wait_for_ack.
        return NL_STOP;
      },
      &st);
  err = nl_recvmsgs(nl.sock(), cb);
  nl_cb_put(cb);
  // An error answer (no such device, or it has no qdisc) is the request's ACK: nothing follows.
  if (err < 0) return st;
  if ((err = nl_wait_for_ack(nl.sock())) < 0) Fail("root qdisc stats", err);
  return st;
}

std::vector<std::string> QdiscKinds(Rtnl& nl, int ifindex) {
  nl_cache* cache = nullptr;
  if (int err = rtnl_qdisc_alloc_cache(nl.sock(), &cache); err < 0) Fail("list qdiscs", err);
  struct Arg {
    int ifindex;
    std::vector<std::string> kinds;
  } arg{ifindex, {}};
  nl_cache_foreach(
      cache,
      [](nl_object* o, void* p) {
        auto* a = static_cast<Arg*>(p);
        auto* tc = TC_CAST(o);
        if (rtnl_tc_get_ifindex(tc) == a->ifindex) a->kinds.push_back(rtnl_tc_get_kind(tc));
      },
      &arg);
  nl_cache_free(cache);
  return arg.kinds;
}

}  // namespace faultline::faults::net
