#include "cli/inject_command.h"
#include "cli/inject_families.h"
#include "faults/core/duration.h"
#include "faults/net/spec.h"

namespace faultline::cli {
namespace {

struct NetFlags {
  std::vector<std::string> to, from, ports;
  std::string protocol = "any", device, direction = "egress", backend = "auto";
  std::string delay, jitter, distribution;
  double correlation = 0, percent = 0;
  uint32_t gap = 0;
  std::string rate, burst, limit, peakrate;
};

void AddAction(CLI::App* family, GlobalOptions& g, v1::NetFault::Action action,
               const std::string& help) {
  auto* cmd = family->add_subcommand(faults::net::ActionName(action), help);
  auto common = std::make_shared<InjectCommon>();
  auto f = std::make_shared<NetFlags>();
  bool partition = action == v1::NetFault::PARTITION;
  cmd->add_option(partition ? "--peer,--to" : "--to", f->to,
                  "destination CIDR(s) of affected traffic, IPv4 or IPv6, e.g. 10.1.0.2/32 or "
                  "fd00:fa17::/64 (repeatable)")
      ->delimiter(',');
  cmd->add_option("--from", f->from, "source CIDR(s), IPv4 or IPv6")->delimiter(',');
  cmd->add_option("--ports", f->ports, "ports or ranges (2379,2380 or 2000-2100), either end")
      ->delimiter(',');
  cmd->add_option("--protocol", f->protocol, "any, tcp, udp or icmp")->capture_default_str();
  cmd->add_option("--device", f->device, "network device (default: all but loopback)");
  cmd->add_option("--direction", f->direction, "egress, ingress or both")->capture_default_str();
  cmd->add_option("--backend", f->backend, "auto, netem, nfqueue or nftables")
      ->capture_default_str();
  switch (action) {
    case v1::NetFault::DELAY:
      cmd->add_option("--delay", f->delay, "added latency, e.g. 100ms")->required();
      cmd->add_option("--jitter", f->jitter, "+/- variation, e.g. 10ms");
      cmd->add_option("--correlation", f->correlation, "percent correlation with the last delay");
      cmd->add_option("--distribution", f->distribution, "uniform, normal, pareto, paretonormal");
      break;
    case v1::NetFault::LOSS:
    case v1::NetFault::DUPLICATE:
    case v1::NetFault::CORRUPT:
      cmd->add_option("--percent", f->percent, "percent of packets")->required();
      cmd->add_option("--correlation", f->correlation, "percent correlation");
      break;
    case v1::NetFault::REORDER:
      cmd->add_option("--percent", f->percent, "percent of packets sent at once")->required();
      cmd->add_option("--delay", f->delay, "delay of the other packets")->required();
      cmd->add_option("--gap", f->gap, "reorder every Nth packet");
      cmd->add_option("--correlation", f->correlation, "percent correlation");
      break;
    case v1::NetFault::BANDWIDTH:
      cmd->add_option("--rate", f->rate, "rate, e.g. 1mbit")->required();
      cmd->add_option("--burst", f->burst, "bucket size, e.g. 32kb");
      cmd->add_option("--limit", f->limit, "queue limit in bytes, e.g. 64kb");
      cmd->add_option("--peakrate", f->peakrate, "peak rate");
      break;
    default:
      break;
  }
  common->AddFlags(cmd);
  cmd->callback([&g, common, f, action] {
    v1::FaultSpec spec;
    auto* n = spec.mutable_net();
    n->set_action(action);
    for (const auto& v : f->to) n->add_to(v);
    for (const auto& v : f->from) n->add_from(v);
    for (const auto& v : f->ports) n->add_ports(v);
    n->set_protocol(EnumFlag<v1::NetFault::Protocol>("--protocol", f->protocol));
    n->set_device(f->device);
    n->set_direction(EnumFlag<v1::NetFault::Direction>("--direction", f->direction));
    n->set_backend(EnumFlag<v1::NetFault::Backend>("--backend", f->backend));
    if (!f->delay.empty()) faults::ToProto(DurationFlag("--delay", f->delay), n->mutable_delay());
    if (!f->jitter.empty()) {
      faults::ToProto(DurationFlag("--jitter", f->jitter), n->mutable_jitter());
    }
    if (!f->distribution.empty()) {
      n->set_distribution(EnumFlag<v1::NetFault::Distribution>("--distribution", f->distribution));
    }
    n->set_correlation(f->correlation);
    n->set_percent(f->percent);
    n->set_gap(f->gap);
    n->set_rate(f->rate);
    n->set_burst(f->burst);
    n->set_limit(f->limit);
    n->set_peakrate(f->peakrate);
    common->Submit(g, spec);
  });
}

}  // namespace

void AddInjectNet(CLI::App* inject, GlobalOptions& g) {
  auto* family = inject->add_subcommand("net", "network delay, loss, partition, bandwidth, ...");
  family->require_subcommand(1);
  AddAction(family, g, v1::NetFault::DELAY, "delay matching packets");
  AddAction(family, g, v1::NetFault::LOSS, "drop a percent of matching packets");
  AddAction(family, g, v1::NetFault::DUPLICATE, "duplicate a percent of packets (netem)");
  AddAction(family, g, v1::NetFault::CORRUPT, "corrupt a percent of packets (netem)");
  AddAction(family, g, v1::NetFault::REORDER, "send some packets at once, delay the rest");
  AddAction(family, g, v1::NetFault::BANDWIDTH, "limit the rate of matching traffic");
  AddAction(family, g, v1::NetFault::PARTITION, "drop all traffic to/from peers");
}

}  // namespace faultline::cli
