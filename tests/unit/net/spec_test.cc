#include <gtest/gtest.h>

#include "faults/core/duration.h"
#include "faults/net/net_faults.h"

namespace faultline::faults::net {
namespace {

using v1::NetFault;
using namespace std::chrono_literals;

Capabilities NoNetem() {
  Capabilities c;
  for (const char* n :
       {"tbf", "htb", "clsact", "u32", "mirred", "ifb", "nftables", "nfqueue", "ipv6"})
    c[n] = {true, ""};
  c["netem"] = {false, "Unknown qdisc kind"};
  return c;
}

Capabilities Full() {
  auto c = NoNetem();
  c["netem"] = {true, ""};
  return c;
}

NetOptions Opts(Capabilities caps) {
  NetOptions o;
  o.exempt_ports = {9090};
  o.exempt_cidrs = {*ParseCidr("10.9.0.5"), *ParseCidr("fd00:9::5")};
  o.capabilities = std::move(caps);
  return o;
}

bool HasField(const FieldErrors& errs, const std::string& field, const std::string& part = "") {
  for (auto& e : errs)
    if (e.field == field && e.reason.find(part) != std::string::npos) return true;
  return false;
}

class NetValidation : public ::testing::Test {
 protected:
  FieldErrors Check(const NetFault& f, Capabilities caps = NoNetem()) {
    Registry r;
    RegisterNetFaults(r, Opts(std::move(caps)));
    v1::FaultSpec spec;
    *spec.mutable_net() = f;
    return r.Validate(spec);
  }
};

TEST_F(NetValidation, EveryBadFieldNamedAtOnce) {
  NetFault f;
  f.set_action(NetFault::DELAY);
  f.add_to("10.1.0.2/40");
  f.add_to("10.9.0.0/24");
  f.add_from("nonsense");
  f.add_ports("0");
  f.add_ports("9000-9100");
  f.set_correlation(150);
  ToProto(-1ms, f.mutable_jitter());
  auto errs = Check(f);
  EXPECT_TRUE(HasField(errs, "net.to[0]", "prefix")) << FormatFieldErrors(errs);
  EXPECT_TRUE(HasField(errs, "net.to[1]", "controller"));
  EXPECT_TRUE(HasField(errs, "net.from[0]"));
  EXPECT_TRUE(HasField(errs, "net.ports[0]"));
  EXPECT_TRUE(HasField(errs, "net.ports[1]", "agent's own port"));
  EXPECT_TRUE(HasField(errs, "net.correlation"));
  EXPECT_TRUE(HasField(errs, "net.jitter"));
  EXPECT_TRUE(HasField(errs, "net.delay", "required"));
}

TEST_F(NetValidation, ActionRequired) {
  EXPECT_TRUE(HasField(Check(NetFault{}), "net.action", "required"));
}

TEST_F(NetValidation, JitterAboveDelayRefused) {
  NetFault f;
  f.set_action(NetFault::DELAY);
  ToProto(10ms, f.mutable_delay());
  ToProto(20ms, f.mutable_jitter());
  EXPECT_TRUE(HasField(Check(f), "net.jitter", "exceed"));
}

TEST_F(NetValidation, PercentsAndRates) {
  NetFault f;
  f.set_action(NetFault::LOSS);
  EXPECT_TRUE(HasField(Check(f), "net.percent", "required"));
  f.set_percent(101);
  EXPECT_TRUE(HasField(Check(f), "net.percent"));
  NetFault b;
  b.set_action(NetFault::BANDWIDTH);
  EXPECT_TRUE(HasField(Check(b), "net.rate", "required"));
  b.set_rate("1 furlong");
  b.set_burst("x");
  auto errs = Check(b);
  EXPECT_TRUE(HasField(errs, "net.rate"));
  EXPECT_TRUE(HasField(errs, "net.burst"));
  b.set_rate("100gbit");
  b.set_burst("3mb");
  EXPECT_TRUE(HasField(Check(b), "net.rate", "17gbit"));
  EXPECT_FALSE(HasField(Check(b), "net.burst"));
  NetFault r;
  r.set_action(NetFault::REORDER);
  r.set_percent(25);
  EXPECT_TRUE(HasField(Check(r), "net.delay", "required"));
}

TEST_F(NetValidation, DuplicateWithoutNetemRefusedWithReason) {
  NetFault f;
  f.set_action(NetFault::DUPLICATE);
  f.set_percent(10);
  auto errs = Check(f);
  EXPECT_TRUE(HasField(errs, "net.action", "sch_netem")) << FormatFieldErrors(errs);
  EXPECT_TRUE(Check(f, Full()).empty());
  f.set_backend(NetFault::NFQUEUE);
  EXPECT_TRUE(HasField(Check(f, Full()), "net.backend", "nfqueue cannot serve duplicate"));
}

TEST_F(NetValidation, BackendChoice) {
  NetFault f;
  f.set_action(NetFault::DELAY);
  ToProto(10ms, f.mutable_delay());
  EXPECT_EQ(ResolveNet(f, Opts(NoNetem()), NoNetem()).backend, Backend::kNfqueue);
  EXPECT_EQ(ResolveNet(f, Opts(Full()), Full()).backend, Backend::kNetem);
  f.set_backend(NetFault::NETEM);
  EXPECT_TRUE(HasField(Check(f), "net.backend", "netem"));
  NetFault loss;
  loss.set_action(NetFault::LOSS);
  loss.set_percent(30);
  EXPECT_EQ(ResolveNet(loss, Opts(NoNetem()), NoNetem()).backend, Backend::kNftables);
  loss.set_correlation(25);
  EXPECT_EQ(ResolveNet(loss, Opts(NoNetem()), NoNetem()).backend, Backend::kNfqueue);
  loss.set_backend(NetFault::NFTABLES);
  EXPECT_TRUE(HasField(Check(loss), "net.backend", "correlation"));
  NetFault p;
  p.set_action(NetFault::PARTITION);
  p.add_to("10.1.0.2");
  p.set_direction(NetFault::BOTH);
  auto s = ResolveNet(p, Opts(NoNetem()), NoNetem());
  EXPECT_EQ(s.backend, Backend::kNftables);
  EXPECT_TRUE(s.match.egress && s.match.ingress);
  NetFault bw;
  bw.set_action(NetFault::BANDWIDTH);
  bw.set_rate("1mbit");
  EXPECT_EQ(ResolveNet(bw, Opts(NoNetem()), NoNetem()).rate, 125000u);
  Capabilities none;
  auto errs = Check(p, none);
  EXPECT_TRUE(HasField(errs, "net.action", "no backend")) << FormatFieldErrors(errs);
}

TEST_F(NetValidation, Ipv6TargetsAndDualStack) {
  NetFault p;
  p.set_action(NetFault::PARTITION);
  p.add_to("fd00:fa17::11");
  p.add_to("10.1.0.0/24");
  p.add_to("fd00:fa17::/48");
  EXPECT_TRUE(Check(p).empty()) << FormatFieldErrors(Check(p));
  auto s = ResolveNet(p, Opts(NoNetem()), NoNetem());
  EXPECT_EQ(s.match.families(), (std::vector<bool>{false, true}));
  // Errors name the field and the family's rule.
  NetFault bad;
  bad.set_action(NetFault::PARTITION);
  bad.add_to("fd00:fa17::11/64");
  bad.add_to("fd00:9::/64");  // covers the exempt controller fd00:9::5
  bad.add_from("fd00::1/200");
  auto errs = Check(bad);
  EXPECT_TRUE(HasField(errs, "net.to[0]", "did you mean fd00:fa17::/64"))
      << FormatFieldErrors(errs);
  EXPECT_TRUE(HasField(errs, "net.to[1]", "fd00:9::5/128, a controller address"));
  EXPECT_TRUE(HasField(errs, "net.from[0]", "0..128 for IPv6"));
  // Only IPv6 destinations and only IPv4 sources: nothing could ever match.
  NetFault none;
  none.set_action(NetFault::PARTITION);
  none.add_to("fd00::1");
  none.add_from("10.0.0.1");
  EXPECT_TRUE(HasField(Check(none), "net.from", "no address family in common"));
  // A node whose probe found no IPv6 refuses IPv6 targets with its reason, IPv4 ones still pass.
  auto no6 = NoNetem();
  no6["ipv6"] = {false, "IPv6 socket: Address family not supported by protocol"};
  errs = Check(p, no6);
  EXPECT_TRUE(HasField(errs, "net.to[0]", "IPv6 is not available on this node: IPv6 socket"))
      << FormatFieldErrors(errs);
  EXPECT_TRUE(HasField(errs, "net.to[2]", "IPv6 is not available"));
  EXPECT_FALSE(HasField(errs, "net.to[1]"));
}

}  // namespace
}  // namespace faultline::faults::net
