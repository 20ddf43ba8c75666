#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "faults/net/spec.h"

namespace faultline::faults::net {

// Every table faultline creates is named kNftPrefix + fault id, in family "inet" (IPv4 and IPv6
// alike), so a sweep can find them after a crash. Agents before IPv6 made them in family "ip":
// the `legacy_ip` calls reach those.
inline constexpr char kNftPrefix[] = "faultline_";

// One nftables table: chains on the output (egress) and input (ingress) hooks that first
// accept exempt traffic, then send matching packets to the verdict.
struct NftPlan {
  Match match;
  enum class Verdict { kDrop, kQueue } verdict = Verdict::kDrop;
  // kDrop: drop this percent of matching packets (100 = all), by kernel randomness.
  double percent = 100;
  // kQueue: NFQUEUE number; "bypass" so packets pass if no one listens (fail-open).
  uint16_t queue = 0;
  std::vector<uint16_t> exempt_ports;
  std::vector<Cidr> exempt_cidrs;
};

// Creates (or atomically replaces) table `name` in one netlink batch: either the whole table
// with its rules exists afterwards or nothing changed. Throws FaultError with the kernel's reason.
void NftCreateTable(const std::string& name, const NftPlan& plan);
// Deletes table `name` (its chains and rules go with it, atomically). Absent is not an error.
void NftDeleteTable(const std::string& name, bool legacy_ip = false);
// Names of the "inet" (or, `legacy_ip`, "ip") family tables that exist now.
std::vector<std::string> NftListTables(bool legacy_ip = false);
// Packets matched by the table's fault rules so far (sum of their counters); -1 if absent.
int64_t NftMatchedPackets(const std::string& name);

}  // namespace faultline::faults::net
