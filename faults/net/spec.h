#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "faultline/v1/fault.pb.h"
#include "faultline/v1/net.pb.h"
#include "faults/core/errors.h"
#include "faults/net/addr.h"

namespace faultline::faults::net {

// Kernel features by name ("netem", "nfqueue", ...) -> (available, detail). See probe.h.
using Capabilities = std::map<std::string, std::pair<bool, std::string>>;

// What the agent tells the net family about itself. Traffic to/from these is never faulted.
struct NetOptions {
  // The agent's own listening ports (gRPC, metrics): exempt as source or destination port.
  std::vector<uint16_t> exempt_ports;
  // Controller (and any other control-plane) addresses: exempt as source or destination.
  std::vector<Cidr> exempt_cidrs;
  // Kernel capabilities. Empty: probed once, lazily, on first use (needs root).
  std::optional<Capabilities> capabilities;
  // Queue numbers the NFQUEUE backend may bind, inclusive. Shared per network namespace.
  uint16_t first_queue = 31000;
  uint16_t last_queue = 31999;
};

enum class Backend { kNetem, kNfqueue, kNftables };
const char* BackendName(Backend b);

// Which packets a fault acts on (see net.proto).
struct Match {
  std::vector<Cidr> to;    // remote addresses
  std::vector<Cidr> from;  // local addresses
  v1::NetFault::Protocol protocol = v1::NetFault::PROTOCOL_ANY;
  std::vector<PortRange> ports;  // source or destination port
  std::string device;            // "" = every device
  bool egress = true;
  bool ingress = false;
  // The IP families rules must be written for (false = IPv4, true = IPv6): those `to` and
  // `from` both allow (a list with no address of a family excludes it; an empty list allows
  // both). Validation refuses a spec for which this is empty.
  std::vector<bool> families() const;
  // The addresses of one family in `cidrs`.
  static std::vector<Cidr> OfFamily(const std::vector<Cidr>& cidrs, bool v6);
  // Transport protocols (IPPROTO_*) that rules of one family must be written for: empty = any
  // protocol. ICMP is ICMPv6 on IPv6.
  std::vector<uint8_t> l4protos(bool v6) const;
};

// A validated NetFault with units resolved.
struct NetSpec {
  v1::NetFault::Action action = v1::NetFault::ACTION_UNSPECIFIED;
  Match match;
  Backend backend = Backend::kNftables;
  std::chrono::nanoseconds delay{0};
  std::chrono::nanoseconds jitter{0};
  double correlation = 0;  // percent
  v1::NetFault::Distribution distribution = v1::NetFault::UNIFORM;
  double percent = 0;
  uint32_t gap = 0;
  uint64_t rate = 0;  // bytes/s
  uint64_t burst = 0;
  uint64_t limit = 0;
  uint64_t peakrate = 0;
};

// The action's name as the CLI, YAML and fault kinds spell it ("delay", "partition").
std::string ActionName(v1::NetFault::Action a);

// Every problem with `f` that needs no node, at once, paths prefixed "net.": what experiments/
// and the controller check at submit time. A backend no kernel could serve the action with is
// refused here; whether this node's kernel can is ValidateNet's question.
FieldErrors ValidateNetSpec(const v1::NetFault& f);
// The same for a whole spec (the family's entry in faults/specs).
FieldErrors ValidateSpec(const v1::FaultSpec& spec);

// ValidateNetSpec plus this node: the exempt ports and addresses of `opts` are refused as
// targets, and `caps` decides the backend: a fault no backend here can serve is refused with the
// reason.
FieldErrors ValidateNet(const v1::NetFault& f, const NetOptions& opts, const Capabilities& caps);
// Resolves a spec that ValidateNet accepted. Throws ValidationError otherwise.
NetSpec ResolveNet(const v1::NetFault& f, const NetOptions& opts, const Capabilities& caps);

}  // namespace faultline::faults::net
