#include <gtest/gtest.h>
#include <netinet/in.h>

#include "faults/net/tc.h"

namespace faultline::faults::net {
namespace {

TEST(U32, EgressMatchesDestinationAndPorts) {
  Match m;
  m.to = {*ParseCidr("10.1.0.2/32")};
  m.protocol = v1::NetFault::TCP;
  m.ports = {{2380, 2380}};
  auto f = BuildU32Filters(m, /*egress=*/true);
  ASSERT_EQ(f.size(), 2u);  // source port or destination port
  // Version 4 with a 20-byte header: ports are read at offset 20.
  EXPECT_EQ(f[0], (std::vector<U32Key>{{0x45000000, 0xff000000, 0},
                                       {0x0A010002, 0xffffffff, 16},
                                       {IPPROTO_TCP << 16, 0x00ff0000, 8},
                                       {2380u << 16, 0xffff0000, 20}}));
  EXPECT_EQ(f[1][3], (U32Key{2380, 0xffff, 20}));
}

TEST(U32, IngressUsesSourceAddress) {
  Match m;
  m.to = {*ParseCidr("10.1.0.0/24")};
  m.from = {*ParseCidr("10.2.0.1")};
  auto f = BuildU32Filters(m, /*egress=*/false);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0],
            (std::vector<U32Key>{
                {0x40000000, 0xf0000000, 0}, {0x0A010000, 0xffffff00, 12}, {0x0A020001, ~0u, 16}}));
}

TEST(U32, CrossProductAndMatchAll) {
  Match m;
  m.to = {*ParseCidr("10.0.0.1"), *ParseCidr("10.0.0.2")};
  m.ports = {{2379, 2380}};  // 2379 and 2380 are not one mask block: 2 blocks x 2 sides
  auto f = BuildU32Filters(m, true);
  EXPECT_EQ(f.size(), 2u * 2u /*tcp,udp*/ * 2u * 2u);
  Match all;
  // Every IP packet: one filter per version.
  auto any = BuildU32Filters(all, true);
  ASSERT_EQ(any.size(), 2u);
  EXPECT_EQ(any[0], (std::vector<U32Key>{{0x40000000, 0xf0000000, 0}}));
  EXPECT_EQ(any[1], (std::vector<U32Key>{{0x60000000, 0xf0000000, 0}}));
}

TEST(U32, Ipv6HeaderOffsets) {
  Match m;
  m.to = {*ParseCidr("fd00:fa17::/64")};
  m.protocol = v1::NetFault::UDP;
  m.ports = {{7100, 7100}};
  auto f = BuildU32Filters(m, /*egress=*/true);
  ASSERT_EQ(f.size(), 2u);
  // Destination at 24..39 (only the words the /64 covers), next header at byte 6, ports at 40.
  EXPECT_EQ(f[0], (std::vector<U32Key>{{0x60000000, 0xf0000000, 0},
                                       {0xfd00fa17, ~0u, 24},
                                       {0, ~0u, 28},
                                       {IPPROTO_UDP << 8, 0x0000ff00, 4},
                                       {7100u << 16, 0xffff0000, 40}}));
  // Ingress: the remote address is the source, at 8..23.
  auto in = BuildU32Filters(m, /*egress=*/false);
  EXPECT_EQ(in[0][1], (U32Key{0xfd00fa17, ~0u, 8}));
  // ICMP is ICMPv6 on IPv6.
  Match icmp;
  icmp.to = {*ParseCidr("fd00::1")};
  icmp.protocol = v1::NetFault::ICMP;
  auto fi = BuildU32Filters(icmp, true);
  ASSERT_EQ(fi.size(), 1u);
  EXPECT_EQ(fi[0].size(), 1u + 4u + 1u);
  EXPECT_EQ(fi[0].back(), (U32Key{IPPROTO_ICMPV6 << 8, 0x0000ff00, 4}));
}

TEST(U32, DualStackListsPairByFamily) {
  Match m;
  m.to = {*ParseCidr("10.0.0.1"), *ParseCidr("fd00::1")};
  auto both = BuildU32Filters(m, true);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0][0].value, 0x40000000u);
  EXPECT_EQ(both[1][0].value, 0x60000000u);
  // A local IPv6 address leaves only IPv6 destinations.
  m.from = {*ParseCidr("fd00::2")};
  auto v6 = BuildU32Filters(m, true);
  ASSERT_EQ(v6.size(), 1u);
  EXPECT_EQ(v6[0][0].value, 0x60000000u);
}

TEST(U32, ExemptFilters) {
  auto f = BuildExemptFilters({9090}, {*ParseCidr("10.9.0.1"), *ParseCidr("fd00::9")});
  // Each address as source and destination; the port in each family, protocol and side.
  ASSERT_EQ(f.size(), 2u + 2u + 2u * 4u);
  EXPECT_EQ(f[0], (std::vector<U32Key>{{0x40000000, 0xf0000000, 0}, {0x0A090001, ~0u, 12}}));
  EXPECT_EQ(f[1], (std::vector<U32Key>{{0x40000000, 0xf0000000, 0}, {0x0A090001, ~0u, 16}}));
  EXPECT_EQ(f[2].size(), 5u);
  EXPECT_EQ(f[2][1], (U32Key{0xfd000000, ~0u, 8}));
  EXPECT_EQ(f[3][4], (U32Key{9, ~0u, 36}));
  EXPECT_EQ(f.back(), (std::vector<U32Key>{{0x60000000, 0xf0000000, 0},
                                           {IPPROTO_UDP << 8, 0x0000ff00, 4},
                                           {9090, 0x0000ffff, 40}}));
}

}  // namespace
}  // namespace faultline::faults::net
