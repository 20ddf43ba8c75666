#pragma once

#include "faults/net/spec.h"

namespace faultline::faults::net {

// Tries every feature the net family uses, for real, inside a scratch network namespace of its
// own (so nothing on the host is touched even briefly): creates an IFB, puts netem, tbf, htb and
// clsact on it, adds a u32 filter with a mirred redirect, builds an nftables table and binds an
// NFQUEUE, all with
// IPv4 and IPv6 rules ("ipv6" says whether the IPv6 half works). Returns name -> (available,
// detail), detail being the kernel's error when missing. Needs CAP_NET_ADMIN and CAP_SYS_ADMIN (for
// the namespace).
Capabilities ProbeKernel();

}  // namespace faultline::faults::net
