#include "faults/net/addr.h"

#include <gtest/gtest.h>

#include "faults/sys/prefix.h"

namespace faultline::faults::net {
namespace {

TEST(Cidr, ParsesPrefixAndBareAddress) {
  auto c = ParseCidr("10.1.0.0/16");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->addr.v4(), 0x0A010000u);
  EXPECT_FALSE(c->v6());
  EXPECT_EQ(c->prefix, 16);
  EXPECT_EQ(c->MaskWord(0), 0xffff0000u);
  EXPECT_TRUE(c->Contains(sys::IpAddr::V4(0x0A01FFFE)));
  EXPECT_FALSE(c->Contains(sys::IpAddr::V4(0x0A020001)));
  auto host = ParseCidr("10.1.0.2");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->prefix, 32);
  EXPECT_EQ(ParseCidr("0.0.0.0/0")->MaskWord(0), 0u);
}

TEST(Cidr, ParsesIpv6) {
  auto c = ParseCidr("fd00:fa17::/64");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->v6());
  EXPECT_EQ(c->prefix, 64);
  EXPECT_EQ(c->Word(0), 0xfd00fa17u);
  EXPECT_EQ(c->MaskWord(1), 0xffffffffu);
  EXPECT_EQ(c->MaskWord(2), 0u);
  EXPECT_EQ(c->ToString(), "fd00:fa17::/64");
  EXPECT_TRUE(c->Contains(*sys::ParseIp("fd00:fa17::12")));
  EXPECT_FALSE(c->Contains(*sys::ParseIp("fd00:fa18::12")));
  auto host = ParseCidr("FD00:FA17:0::0:12");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->prefix, 128);
  EXPECT_EQ(host->ToString(), "fd00:fa17::12/128");  // RFC 5952 form
  EXPECT_EQ(ParseCidr("[fd00::1]")->ToString(), "fd00::1/128");
  auto odd = ParseCidr("fd00:fa17::/33");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->MaskWord(1), 0x80000000u);
  EXPECT_EQ(ParseCidr("::/0")->prefix, 0);
}

TEST(Cidr, RefusesBadInputWithReason) {
  std::string why;
  EXPECT_FALSE(ParseCidr("10.1.0.2/16", &why));
  EXPECT_NE(why.find("10.1.0.0/16"), std::string::npos) << why;
  EXPECT_FALSE(ParseCidr("10.1.0.0/33", &why));
  EXPECT_NE(why.find("prefix"), std::string::npos);
  EXPECT_FALSE(ParseCidr("10.1.0/24", &why));
  EXPECT_FALSE(ParseCidr("fd00::1/129", &why));
  EXPECT_NE(why.find("0..128 for IPv6"), std::string::npos) << why;
  EXPECT_FALSE(ParseCidr("fd00:fa17::1/64", &why));
  EXPECT_NE(why.find("did you mean fd00:fa17::/64?"), std::string::npos) << why;
  EXPECT_FALSE(ParseCidr("fd00:::1", &why));
  EXPECT_NE(why.find("not an IPv4 or IPv6 address"), std::string::npos) << why;
  EXPECT_FALSE(ParseCidr("fe80::1%eth0", &why));
  EXPECT_FALSE(ParseCidr("", &why));
  EXPECT_FALSE(ParseCidr("10.0.0.0/", &why));
}

TEST(Cidr, Overlaps) {
  EXPECT_TRUE(ParseCidr("10.0.0.0/8")->Overlaps(*ParseCidr("10.1.2.3")));
  EXPECT_TRUE(ParseCidr("10.1.2.3")->Overlaps(*ParseCidr("10.0.0.0/8")));
  EXPECT_FALSE(ParseCidr("10.1.0.0/16")->Overlaps(*ParseCidr("10.2.0.0/16")));
  EXPECT_TRUE(ParseCidr("fd00::/8")->Overlaps(*ParseCidr("fd00:fa17::1")));
  EXPECT_FALSE(ParseCidr("fd00:fa17::/64")->Overlaps(*ParseCidr("fd00:fa18::/64")));
  // Families never overlap, not even the whole of each.
  EXPECT_FALSE(ParseCidr("0.0.0.0/0")->Overlaps(*ParseCidr("::/0")));
}

TEST(Ports, ParsesSingleAndRange) {
  EXPECT_EQ(ParsePortRange("2380"), (PortRange{2380, 2380}));
  EXPECT_EQ(ParsePortRange("2379-2380"), (PortRange{2379, 2380}));
  std::string why;
  EXPECT_FALSE(ParsePortRange("0", &why));
  EXPECT_FALSE(ParsePortRange("65536", &why));
  EXPECT_FALSE(ParsePortRange("2380-2379", &why));
  EXPECT_NE(why.find("above"), std::string::npos);
  EXPECT_FALSE(ParsePortRange("80-", &why));
  EXPECT_FALSE(ParsePortRange("http", &why));
}

TEST(Ports, RangeToMasksCoversExactly) {
  for (PortRange r : {PortRange{2379, 2380}, PortRange{1, 65535}, PortRange{1000, 1999},
                      PortRange{8080, 8080}, PortRange{65535, 65535}}) {
    auto masks = PortRangeToMasks(r);
    for (uint32_t p = 1; p <= 65535; ++p) {
      int hits = 0;
      for (auto m : masks) hits += (p & m.mask) == m.value;
      ASSERT_EQ(hits, (p >= r.first && p <= r.last) ? 1 : 0) << p;
    }
  }
  EXPECT_EQ(PortRangeToMasks({8080, 8080}).size(), 1u);
  EXPECT_EQ(PortRangeToMasks({2380, 2383}), (std::vector<MaskedPort>{{2380, 0xfffc}}));
}

TEST(Units, RatesAndSizes) {
  EXPECT_EQ(ParseRate("1mbit"), 125000u);
  EXPECT_EQ(ParseRate("100kbit"), 12500u);
  EXPECT_EQ(ParseRate("10mbps"), 10000000u);
  EXPECT_EQ(ParseRate("8000"), 1000u);
  std::string why;
  EXPECT_FALSE(ParseRate("1 furlong", &why));
  EXPECT_FALSE(ParseRate("fast", &why));
  EXPECT_EQ(ParseSize("32kb"), 32768u);
  EXPECT_EQ(ParseSize("1500"), 1500u);
  EXPECT_FALSE(ParseSize("-1", &why));
}

}  // namespace
}  // namespace faultline::faults::net

namespace faultline::faults::net {
namespace {

// Controller addresses, listen addresses and member client URLs: one parser for all of them.
TEST(Endpoints, HostPortAndCidr) {
  EXPECT_EQ(EndpointHost("10.0.0.1:2379"), "10.0.0.1");
  EXPECT_EQ(EndpointHost("http://10.0.0.1:2379"), "10.0.0.1");
  EXPECT_EQ(EndpointHost("https://10.0.0.1:2379/v3"), "10.0.0.1");
  EXPECT_EQ(EndpointHost("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(EndpointHost("10.1.0.0/16"), "10.1.0.0/16");
  EXPECT_EQ(EndpointPort("0.0.0.0:7000"), 7000);
  EXPECT_EQ(EndpointPort("http://10.0.0.1:2380"), 2380);
  EXPECT_FALSE(EndpointPort("10.0.0.1").has_value());
  EXPECT_FALSE(EndpointPort("10.0.0.1:http").has_value());
  EXPECT_EQ(EndpointCidr("10.0.0.1:7000")->ToString(), "10.0.0.1/32");
  EXPECT_EQ(EndpointCidr("10.1.0.0/16")->ToString(), "10.1.0.0/16");
  std::string why;
  EXPECT_FALSE(EndpointCidr("controller.example:7000", &why).has_value());
  EXPECT_NE(why.find("not an IPv4"), std::string::npos) << why;
}

TEST(Endpoints, Ipv6InBrackets) {
  EXPECT_EQ(EndpointHost("[fd00:fa17::11]:2379"), "fd00:fa17::11");
  EXPECT_EQ(EndpointHost("http://[fd00:fa17::11]:2379"), "fd00:fa17::11");
  EXPECT_EQ(EndpointHost("https://[fd00::1]:2379/v3"), "fd00::1");
  EXPECT_EQ(EndpointHost("fd00::1"), "fd00::1");
  EXPECT_EQ(EndpointHost("fd00:fa17::/64"), "fd00:fa17::/64");
  EXPECT_EQ(EndpointPort("[fd00::1]:7000"), 7000);
  EXPECT_EQ(EndpointPort("http://[::1]:2380"), 2380);
  EXPECT_FALSE(EndpointPort("fd00::1").has_value());
  EXPECT_FALSE(EndpointPort("[fd00::1]").has_value());
  EXPECT_EQ(EndpointCidr("[fd00::1]:7000")->ToString(), "fd00::1/128");
  EXPECT_EQ(EndpointCidr("http://[fd00:fa17::11]:2379")->ToString(), "fd00:fa17::11/128");
}

}  // namespace
}  // namespace faultline::faults::net
