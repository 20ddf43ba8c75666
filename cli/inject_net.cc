#include "cli/inject_command.h"
#include "cli/inject_families.h"
#include "faults/core/duration.h"

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

template <typename Enum>
Enum EnumFlag(const std::string& flag, const std::string& value,
              const std::vector<std::pair<std::string, Enum>>& names) {
  std::string allowed;
  for (const auto& [n, e] : names) {
    if (n == value) return e;
    allowed += (allowed.empty() ? "" : ", ") + n;
  }
  throw CLI::ValidationError(flag, "\"" + value + "\": one of " + allowed);
}

void AddAction(CLI::App* family, GlobalOptions& g, const std::string& name, const std::string& help,
               v1::NetFault::Action action) {
  auto* cmd = family->add_subcommand(name, help);
  auto common = std::make_shared<InjectCommon>();
  auto f = std::make_shared<NetFlags>();
  bool partition = action == v1::NetFault::PARTITION;
  cmd->add_option(partition ? "--peer,--to" : "--to", f->to,
                  "destination CIDR(s) of affected traffic, e.g. 10.1.0.2/32 (repeatable)")
      ->delimiter(',');
  cmd->add_option("--from", f->from, "source CIDR(s)")->delimiter(',');
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
    n->set_protocol(EnumFlag<v1::NetFault::Protocol>("--protocol", f->protocol,
                                                     {{"any", v1::NetFault::PROTOCOL_ANY},
                                                      {"tcp", v1::NetFault::TCP},
                                                      {"udp", v1::NetFault::UDP},
                                                      {"icmp", v1::NetFault::ICMP}}));
    n->set_device(f->device);
    n->set_direction(EnumFlag<v1::NetFault::Direction>("--direction", f->direction,
                                                       {{"egress", v1::NetFault::EGRESS},
                                                        {"ingress", v1::NetFault::INGRESS},
                                                        {"both", v1::NetFault::BOTH}}));
    n->set_backend(EnumFlag<v1::NetFault::Backend>("--backend", f->backend,
                                                   {{"auto", v1::NetFault::AUTO},
                                                    {"netem", v1::NetFault::NETEM},
                                                    {"nfqueue", v1::NetFault::NFQUEUE},
                                                    {"nftables", v1::NetFault::NFTABLES}}));
    if (!f->delay.empty()) faults::ToProto(DurationFlag("--delay", f->delay), n->mutable_delay());
    if (!f->jitter.empty()) {
      faults::ToProto(DurationFlag("--jitter", f->jitter), n->mutable_jitter());
    }
    if (!f->distribution.empty()) {
      n->set_distribution(
          EnumFlag<v1::NetFault::Distribution>("--distribution", f->distribution,
                                               {{"uniform", v1::NetFault::UNIFORM},
                                                {"normal", v1::NetFault::NORMAL},
                                                {"pareto", v1::NetFault::PARETO},
                                                {"paretonormal", v1::NetFault::PARETONORMAL}}));
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
  AddAction(family, g, "delay", "delay matching packets", v1::NetFault::DELAY);
  AddAction(family, g, "loss", "drop a percent of matching packets", v1::NetFault::LOSS);
  AddAction(family, g, "duplicate", "duplicate a percent of packets (netem)",
            v1::NetFault::DUPLICATE);
  AddAction(family, g, "corrupt", "corrupt a percent of packets (netem)", v1::NetFault::CORRUPT);
  AddAction(family, g, "reorder", "send some packets at once, delay the rest",
            v1::NetFault::REORDER);
  AddAction(family, g, "bandwidth", "limit the rate of matching traffic", v1::NetFault::BANDWIDTH);
  AddAction(family, g, "partition", "drop all traffic to/from peers", v1::NetFault::PARTITION);
}

}  // namespace faultline::cli
