#pragma once

// Fault family "net": delay, loss, duplicate, corrupt, reorder, bandwidth and partition.
//
// Backends (chosen per fault from the kernel probe, or forced by NetFault.backend):
//  - netem:    an IFB device carries a netem (or tbf) root qdisc; u32 filters with a mirred
//              redirect on clsact egress/ingress of the target devices steer matching packets
//              into it, at filter priorities 0xFA00..0xFAFF. Needs sch_netem (tbf for
//              bandwidth). The IFB comes from the agent's IfbPool ("flbpool<hex>", reset and
//              kept idle on revert, see ifb_pool.h) when the family was registered with one;
//              without a pool each fault creates "flb<id>" and deletes it on revert.
//  - nfqueue:  an nftables table "faultline_<id>" queues matching packets ("bypass": fail-open)
//              to a user-space queue that holds them on a timer heap: delay, jitter, loss,
//              reorder. Works without sch_netem.
//  - nftables: the same table drops matching packets: partition, and uncorrelated loss.
// IPv6: every backend takes IPv4 and IPv6 CIDRs, mixed in one list (each matches its family's
// packets). nftables tables are in the inet family; u32 filters are added for ETH_P_ALL with a
// key on the IP version (IPv6 addresses at offsets 8/24, next header at 6, ports at 40: packets
// with extension headers are not matched by port, as IPv4 packets with options are not); the
// NFQUEUE backend never reads packet bytes, so it is family-blind. The probe's "ipv6" says
// whether this node can take IPv6 targets.
// Randomness: NFQUEUE loss/jitter/reorder draw from the spec's seed (replayable); netem and
// nftables `numgen random` use the kernel's generator and are not.
// The exempt ports and addresses of NetOptions are refused as targets and always let through.
// Sweep() removes every IFB named flb* (except pooled ones whose owning agent is alive: their
// alias names it), every filter in the priority range and every faultline_* table, whichever
// process made them.

#include "faults/core/registry.h"
#include "faults/net/spec.h"

namespace faultline::faults::net {

class IfbPool;

// `pool` (optional, owned by the caller, outliving the factory and its faults) lends the tc
// backend its IFBs.
std::unique_ptr<FaultFactory> MakeNetFaultFactory(NetOptions options, IfbPool* pool = nullptr);
void RegisterNetFaults(Registry& registry, NetOptions options, IfbPool* pool = nullptr);

}  // namespace faultline::faults::net
