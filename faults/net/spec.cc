#include "faults/net/spec.h"

#include <netinet/in.h>

#include "faults/core/duration.h"
#include "faults/core/names.h"

namespace faultline::faults::net {
namespace {

using v1::NetFault;

bool Has(const Capabilities& caps, const char* name) {
  auto it = caps.find(name);
  return it != caps.end() && it->second.first;
}

// The IFB/clsact tree that carries netem and tbf qdiscs.
bool HasTcPath(const Capabilities& caps, const char* qdisc) {
  return Has(caps, qdisc) && Has(caps, "ifb") && Has(caps, "clsact") && Has(caps, "u32") &&
         Has(caps, "mirred");
}

std::string Missing(const Capabilities& caps, std::initializer_list<const char*> names) {
  std::string out;
  for (const char* n : names) {
    if (Has(caps, n)) continue;
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out.empty() ? "nothing" : out;
}

// Why `b` cannot serve `f` here, or "" if it can.
std::string Unsupported(Backend b, const NetFault& f, const Capabilities& caps) {
  const auto a = f.action();
  switch (b) {
    case Backend::kNetem:
      if (a == NetFault::PARTITION) return "partition is served by the nftables backend";
      if (a == NetFault::BANDWIDTH) {
        if (!HasTcPath(caps, "tbf"))
          return "bandwidth needs tbf on IFB (missing: " +
                 Missing(caps, {"tbf", "ifb", "clsact", "u32", "mirred"}) + ")";
        return "";
      }
      if (!HasTcPath(caps, "netem"))
        return "the netem backend needs sch_netem on IFB (missing: " +
               Missing(caps, {"netem", "ifb", "clsact", "u32", "mirred"}) + ")";
      return "";
    case Backend::kNfqueue:
      if (a == NetFault::DUPLICATE || a == NetFault::CORRUPT)
        return ActionName(a) +
               " needs sch_netem; the NFQUEUE backend only delays, drops and "
               "reorders packets";
      if (a == NetFault::BANDWIDTH) return "bandwidth is served by tbf (netem backend)";
      if (a == NetFault::PARTITION) return "partition is served by the nftables backend";
      if (f.distribution() == NetFault::PARETO || f.distribution() == NetFault::PARETONORMAL)
        return "the NFQUEUE backend has uniform and normal jitter only";
      if (!Has(caps, "nfqueue") || !Has(caps, "nftables"))
        return "the NFQUEUE backend needs nftables and nfnetlink_queue (missing: " +
               Missing(caps, {"nftables", "nfqueue"}) + ")";
      return "";
    case Backend::kNftables:
      if (a != NetFault::LOSS && a != NetFault::PARTITION)
        return "the nftables backend serves loss and partition only";
      if (a == NetFault::LOSS && f.correlation() != 0)
        return "nftables loss is uncorrelated; use the nfqueue or netem backend for correlation";
      if (!Has(caps, "nftables")) {
        auto it = caps.find("nftables");
        return "nftables is not available: " +
               (it != caps.end() ? it->second.second : std::string("not probed"));
      }
      return "";
  }
  return "unknown backend";
}

// Preference order when the user leaves the backend to the agent.
std::vector<Backend> Candidates(NetFault::Action a) {
  switch (a) {
    case NetFault::PARTITION:
      return {Backend::kNftables};
    case NetFault::LOSS:
      return {Backend::kNetem, Backend::kNftables, Backend::kNfqueue};
    case NetFault::DELAY:
    case NetFault::REORDER:
      return {Backend::kNetem, Backend::kNfqueue};
    default:
      return {Backend::kNetem};
  }
}

Backend ToBackend(NetFault::Backend b) {
  return b == NetFault::NETEM     ? Backend::kNetem
         : b == NetFault::NFQUEUE ? Backend::kNfqueue
                                  : Backend::kNftables;
}

// A kernel with every feature: what no node can serve is refused without asking one.
const Capabilities& EveryFeature() {
  static const Capabilities all = [] {
    Capabilities c;
    for (const char* n :
         {"netem", "tbf", "ifb", "clsact", "u32", "mirred", "nfqueue", "nftables", "ipv6"}) {
      c[n] = {true, ""};
    }
    return c;
  }();
  return all;
}

void CheckPercent(double v, const char* field, bool required, FieldErrors* errs) {
  if (required && v == 0) {
    errs->push_back({std::string("net.") + field, "required: a percent in (0, 100]"});
  } else if (!(v >= 0 && v <= 100)) {
    errs->push_back({std::string("net.") + field, "must be a percent in [0, 100]"});
  }
}

}  // namespace

const char* BackendName(Backend b) {
  switch (b) {
    case Backend::kNetem:
      return "netem";
    case Backend::kNfqueue:
      return "nfqueue";
    case Backend::kNftables:
      return "nftables";
  }
  return "?";
}

std::string ActionName(NetFault::Action a) { return NameOf(a); }

std::vector<Cidr> Match::OfFamily(const std::vector<Cidr>& cidrs, bool v6) {
  std::vector<Cidr> out;
  for (const Cidr& c : cidrs)
    if (c.v6() == v6) out.push_back(c);
  return out;
}

std::vector<bool> Match::families() const {
  std::vector<bool> out;
  for (bool v6 : {false, true}) {
    if (!to.empty() && OfFamily(to, v6).empty()) continue;
    if (!from.empty() && OfFamily(from, v6).empty()) continue;
    out.push_back(v6);
  }
  return out;
}

std::vector<uint8_t> Match::l4protos(bool v6) const {
  switch (protocol) {
    case NetFault::TCP:
      return {IPPROTO_TCP};
    case NetFault::UDP:
      return {IPPROTO_UDP};
    case NetFault::ICMP:
      return {v6 ? uint8_t{IPPROTO_ICMPV6} : uint8_t{IPPROTO_ICMP}};
    default:
      return ports.empty() ? std::vector<uint8_t>{}
                           : std::vector<uint8_t>{IPPROTO_TCP, IPPROTO_UDP};
  }
}

FieldErrors ValidateNetSpec(const NetFault& f) {
  FieldErrors errs;
  const auto a = f.action();
  if (!NetFault::Action_IsValid(a) || a == NetFault::ACTION_UNSPECIFIED) {
    errs.push_back({"net.action", "required: one of " + Choices<NetFault::Action>()});
    return errs;
  }
  for (int i = 0; i < f.to_size(); ++i) {
    std::string why;
    if (!ParseCidr(f.to(i), &why)) errs.push_back({"net.to[" + std::to_string(i) + "]", why});
  }
  for (int i = 0; i < f.from_size(); ++i) {
    std::string why;
    if (!ParseCidr(f.from(i), &why)) errs.push_back({"net.from[" + std::to_string(i) + "]", why});
  }
  if (errs.empty() && f.to_size() > 0 && f.from_size() > 0) {
    // Dual-stack lists pair addresses family by family; with no family in common the fault
    // would match nothing at all.
    Match m;
    for (const auto& t : f.to()) m.to.push_back(*ParseCidr(t));
    for (const auto& t : f.from()) m.from.push_back(*ParseCidr(t));
    if (m.families().empty())
      errs.push_back({"net.from",
                      "no address family in common with net.to (IPv4 and IPv6 addresses never "
                      "match each other's packets)"});
  }
  if (!NetFault::Protocol_IsValid(f.protocol()))
    errs.push_back({"net.protocol", "must be " + Choices<NetFault::Protocol>()});
  if (f.protocol() == NetFault::ICMP && f.ports_size() > 0)
    errs.push_back({"net.ports", "ports need tcp or udp, not icmp"});
  for (int i = 0; i < f.ports_size(); ++i) {
    std::string why;
    if (!ParsePortRange(f.ports(i), &why)) {
      errs.push_back({"net.ports[" + std::to_string(i) + "]", why});
    }
  }
  if (f.device().size() >= 16 || f.device().find('/') != std::string::npos)
    errs.push_back({"net.device", "not a valid interface name: \"" + f.device() + "\""});
  if (!NetFault::Direction_IsValid(f.direction()))
    errs.push_back({"net.direction", "must be " + Choices<NetFault::Direction>()});
  if (!NetFault::Distribution_IsValid(f.distribution()))
    errs.push_back({"net.distribution", "must be " + Choices<NetFault::Distribution>()});

  const auto delay = FromProto(f.delay());
  const auto jitter = FromProto(f.jitter());
  if (delay.count() < 0) errs.push_back({"net.delay", "must not be negative"});
  if (jitter.count() < 0) errs.push_back({"net.jitter", "must not be negative"});
  if (delay > std::chrono::seconds(60)) errs.push_back({"net.delay", "must be at most 60s"});
  if (jitter > delay && a == NetFault::DELAY)
    errs.push_back({"net.jitter", "must not exceed delay (" + FormatDuration(delay) + ")"});
  CheckPercent(f.correlation(), "correlation", false, &errs);

  switch (a) {
    case NetFault::DELAY:
      if (delay.count() <= 0) errs.push_back({"net.delay", "required: a positive duration"});
      break;
    case NetFault::LOSS:
    case NetFault::DUPLICATE:
    case NetFault::CORRUPT:
      CheckPercent(f.percent(), "percent", true, &errs);
      break;
    case NetFault::REORDER:
      CheckPercent(f.percent(), "percent", true, &errs);
      if (delay.count() <= 0)
        errs.push_back({"net.delay",
                        "required: reorder sends some packets at once and holds "
                        "the rest for this long"});
      break;
    case NetFault::BANDWIDTH: {
      std::string why;
      // tbf takes 32-bit signed rates and sizes (bytes): about 17 gbit and 2 GB.
      constexpr uint64_t kMax = INT32_MAX;
      auto rate = [&](const std::string& text, const char* field, bool required) {
        if (text.empty()) {
          if (required) errs.push_back({field, "required, e.g. 1mbit"});
        } else if (auto r = ParseRate(text, &why); !r) {
          errs.push_back({field, why});
        } else if (*r > kMax) {
          errs.push_back({field, "at most 17gbit for tbf"});
        }
      };
      auto size = [&](const std::string& text, const char* field) {
        if (text.empty()) return;
        if (auto v = ParseSize(text, &why); !v) {
          errs.push_back({field, why});
        } else if (*v > kMax) {
          errs.push_back({field, "at most 2gb for tbf"});
        }
      };
      rate(f.rate(), "net.rate", true);
      rate(f.peakrate(), "net.peakrate", false);
      size(f.burst(), "net.burst");
      size(f.limit(), "net.limit");
      break;
    }
    default:
      break;
  }
  if (!NetFault::Backend_IsValid(f.backend())) {
    errs.push_back({"net.backend", "must be " + Choices<NetFault::Backend>()});
  } else if (f.backend() != NetFault::AUTO && errs.empty()) {
    // A backend that could not serve the action on any kernel is refused before any node sees it.
    const Backend b = ToBackend(f.backend());
    if (std::string why = Unsupported(b, f, EveryFeature()); !why.empty()) {
      errs.push_back({"net.backend",
                      std::string(BackendName(b)) + " cannot serve " + ActionName(a) + ": " + why});
    }
  }
  return errs;
}

FieldErrors ValidateSpec(const v1::FaultSpec& spec) { return ValidateNetSpec(spec.net()); }

FieldErrors ValidateNet(const NetFault& f, const NetOptions& opts, const Capabilities& caps) {
  FieldErrors errs = ValidateNetSpec(f);
  // The agent's own control channel: never a target.
  for (int i = 0; i < f.to_size(); ++i) {
    auto c = ParseCidr(f.to(i));
    if (!c) continue;
    for (const Cidr& ex : opts.exempt_cidrs)
      if (c->Overlaps(ex))
        errs.push_back(
            {"net.to[" + std::to_string(i) + "]",
             "covers " + ex.ToString() + ", a controller address the agent must keep reaching"});
  }
  // IPv6 targets need a node whose kernel has IPv6 and takes IPv6 rules (the probe's "ipv6").
  if (!Has(caps, "ipv6")) {
    auto it = caps.find("ipv6");
    const std::string why = it != caps.end() ? it->second.second : "not probed";
    auto refuse_v6 = [&](const auto& list, const char* field) {
      for (int i = 0; i < list.size(); ++i)
        if (auto c = ParseCidr(list.Get(i)); c && c->v6())
          errs.push_back({std::string(field) + "[" + std::to_string(i) + "]",
                          "IPv6 is not available on this node: " + why});
    };
    refuse_v6(f.to(), "net.to");
    refuse_v6(f.from(), "net.from");
  }
  for (int i = 0; i < f.ports_size(); ++i) {
    auto r = ParsePortRange(f.ports(i));
    if (!r) continue;
    for (uint16_t p : opts.exempt_ports)
      if (p >= r->first && p <= r->last)
        errs.push_back({"net.ports[" + std::to_string(i) + "]",
                        "covers port " + std::to_string(p) + ", the agent's own port"});
  }
  if (!errs.empty()) return errs;
  const auto a = f.action();
  if (f.backend() != NetFault::AUTO) {
    const Backend b = ToBackend(f.backend());
    if (std::string why = Unsupported(b, f, caps); !why.empty())
      errs.push_back({"net.backend",
                      std::string(BackendName(b)) + " cannot serve " + ActionName(a) + ": " + why});
  } else {
    std::string reasons;
    bool ok = false;
    for (Backend b : Candidates(a)) {
      std::string why = Unsupported(b, f, caps);
      if (why.empty()) {
        ok = true;
        break;
      }
      reasons += std::string(reasons.empty() ? "" : "; ") + BackendName(b) + ": " + why;
    }
    if (!ok)
      errs.push_back({"net.action",
                      "no backend on this node can serve " + ActionName(a) + " (" + reasons + ")"});
  }
  return errs;
}

NetSpec ResolveNet(const NetFault& f, const NetOptions& opts, const Capabilities& caps) {
  if (auto errs = ValidateNet(f, opts, caps); !errs.empty()) throw ValidationError(errs);
  NetSpec s;
  s.action = f.action();
  for (const auto& t : f.to()) s.match.to.push_back(*ParseCidr(t));
  for (const auto& t : f.from()) s.match.from.push_back(*ParseCidr(t));
  s.match.protocol = f.protocol();
  for (const auto& p : f.ports()) s.match.ports.push_back(*ParsePortRange(p));
  s.match.device = f.device();
  s.match.egress = f.direction() != NetFault::INGRESS;
  s.match.ingress = f.direction() == NetFault::INGRESS || f.direction() == NetFault::BOTH;
  if (f.backend() != NetFault::AUTO) {
    s.backend = ToBackend(f.backend());
  } else {
    for (Backend b : Candidates(f.action())) {
      if (Unsupported(b, f, caps).empty()) {
        s.backend = b;
        break;
      }
    }
  }
  s.delay = FromProto(f.delay());
  s.jitter = FromProto(f.jitter());
  s.correlation = f.correlation();
  s.distribution =
      f.distribution() == NetFault::DISTRIBUTION_UNSPECIFIED ? NetFault::UNIFORM : f.distribution();
  s.percent = f.percent();
  s.gap = f.gap();
  if (!f.rate().empty()) s.rate = *ParseRate(f.rate());
  if (!f.peakrate().empty()) s.peakrate = *ParseRate(f.peakrate());
  if (!f.burst().empty()) s.burst = *ParseSize(f.burst());
  if (!f.limit().empty()) s.limit = *ParseSize(f.limit());
  return s;
}

}  // namespace faultline::faults::net
