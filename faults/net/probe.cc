#include "faults/net/probe.h"

#include <sched.h>
#include <string.h>
#include <sys/socket.h>

#include <thread>

#include "faults/net/nfqueue.h"
#include "faults/net/nft.h"
#include "faults/net/tc.h"
#include "faults/sys/unique_fd.h"

namespace faultline::faults::net {
namespace {

template <typename Fn>
void Try(Capabilities& caps, const char* name, const std::string& ok_detail, Fn fn) {
  try {
    fn();
    caps[name] = {true, ok_detail};
  } catch (const std::exception& e) {
    std::string why = e.what();
    // ENOENT from the kernel here means it could not find (or load) the module for a kind.
    if (why.find("Object not found") != std::string::npos ||
        why.find(strerror(ENOENT)) != std::string::npos)
      why = std::string("kernel has no ") + name + " (module missing?): " + why;
    caps[name] = {false, why};
  }
}

void ProbeHere(Capabilities& caps) {
  Rtnl nl;
  int ifb = 0, ifb2 = 0;
  Try(caps, "ifb", "created an IFB device", [&] {
    ifb = CreateIfb(nl, std::string(kIfbPrefix) + "probe0");
    ifb2 = CreateIfb(nl, std::string(kIfbPrefix) + "probe1");
  });
  auto need_ifb = [&] {
    if (ifb == 0) throw FaultError("not tried: no IFB device to try it on");
  };
  NetSpec s;
  s.action = v1::NetFault::DELAY;
  s.delay = std::chrono::milliseconds(1);
  Try(caps, "netem", "netem qdisc on IFB", [&] {
    need_ifb();
    SetRootNetem(nl, ifb, s);
    DeleteRootQdisc(nl, ifb);
  });
  s.rate = 125000;
  Try(caps, "tbf", "tbf qdisc on IFB", [&] {
    need_ifb();
    SetRootTbf(nl, ifb, s);
    DeleteRootQdisc(nl, ifb);
  });
  Try(caps, "htb", "htb qdisc and class on IFB", [&] {
    need_ifb();
    SetRootHtb(nl, ifb, 125000);
    DeleteRootQdisc(nl, ifb);
  });
  bool clsact = false;
  Try(caps, "clsact", "clsact qdisc", [&] {
    need_ifb();
    AddClsact(nl, ifb);
    clsact = true;
  });
  Match m;
  // Documentation addresses of both families (TEST-NET-1, 2001:db8::/32), so every rule kind
  // below is also tried with IPv6 keys.
  m.to.push_back(*ParseCidr("192.0.2.1"));
  m.to.push_back(*ParseCidr("2001:db8::/64"));
  m.protocol = v1::NetFault::TCP;
  m.ports.push_back({2380, 2380});
  Try(caps, "u32", "u32 filter on clsact egress", [&] {
    if (!clsact) throw FaultError("not tried: no clsact");
    for (const auto& keys : BuildU32Filters(m, true))
      AddU32Filter(nl, ifb, false, kFirstPrio, keys, 0);
  });
  Try(caps, "mirred", "u32 + mirred redirect to IFB", [&] {
    if (!clsact || ifb2 == 0) throw FaultError("not tried: no clsact or second IFB");
    AddU32Filter(nl, ifb, true, kFirstPrio + 1, BuildU32Filters(m, false)[0], ifb2);
  });
  NftPlan plan;
  plan.match = m;
  plan.match.ingress = true;
  plan.percent = 50;
  const std::string table = std::string(kNftPrefix) + "probe";
  Try(caps, "nftables", "table with drop and numgen rules", [&] {
    NftCreateTable(table, plan);
    NftDeleteTable(table);
  });
  Try(caps, "nfqueue", "bound a queue and steered a rule to it", [&] {
    PacketQueue q(31000, 31999, {});
    plan.verdict = NftPlan::Verdict::kQueue;
    plan.queue = q.queue_num();
    NftCreateTable(table, plan);
    NftDeleteTable(table);
  });
  // IPv6: the kernel has it (a socket opens) and took the IPv6 half of the u32 and nftables
  // rules tried above.
  Try(caps, "ipv6", "IPv6 sockets; IPv6 rules in nftables (inet) and u32", [&] {
    sys::UniqueFd sock(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) ThrowErrno("IPv6 socket");
    for (const char* need : {"nftables", "u32"})
      if (!caps[need].first)
        throw FaultError(std::string("not tried: ") + need + " failed: " + caps[need].second);
  });
  // The namespace dies with this thread; deleting first keeps the probe tidy if it does not.
  try {
    nl.DeleteLink(std::string(kIfbPrefix) + "probe0");
    nl.DeleteLink(std::string(kIfbPrefix) + "probe1");
  } catch (const std::exception&) {
  }
}

}  // namespace

Capabilities ProbeKernel() {
  Capabilities caps;
  // A network namespace is per thread: unsharing in a helper thread leaves the agent's own
  // threads where they are, and the namespace vanishes when the thread's sockets close.
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      const std::string why =
          std::string("cannot create a scratch network namespace: ") + strerror(errno);
      for (const char* n :
           {"netem", "tbf", "htb", "clsact", "u32", "mirred", "ifb", "nftables", "nfqueue", "ipv6"})
        caps[n] = {false, why};
      return;
    }
    try {
      ProbeHere(caps);
    } catch (const std::exception& e) {
      caps["ifb"] = {false, e.what()};
    }
  });
  t.join();
  return caps;
}

}  // namespace faultline::faults::net
