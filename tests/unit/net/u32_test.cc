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
  EXPECT_EQ(f[0], (std::vector<U32Key>{{0x0A010002, 0xffffffff, 16},
                                       {IPPROTO_TCP << 16, 0x00ff0000, 8},
                                       {2380u << 16, 0xffff0000, 20}}));
  EXPECT_EQ(f[1][2], (U32Key{2380, 0xffff, 20}));
}

TEST(U32, IngressUsesSourceAddress) {
  Match m;
  m.to = {*ParseCidr("10.1.0.0/24")};
  m.from = {*ParseCidr("10.2.0.1")};
  auto f = BuildU32Filters(m, /*egress=*/false);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0], (std::vector<U32Key>{{0x0A010000, 0xffffff00, 12}, {0x0A020001, ~0u, 16}}));
}

TEST(U32, CrossProductAndMatchAll) {
  Match m;
  m.to = {*ParseCidr("10.0.0.1"), *ParseCidr("10.0.0.2")};
  m.ports = {{2379, 2380}};  // 2379 and 2380 are not one mask block: 2 blocks x 2 sides
  auto f = BuildU32Filters(m, true);
  EXPECT_EQ(f.size(), 2u * 2u /*tcp,udp*/ * 2u * 2u);
  Match all;
  auto any = BuildU32Filters(all, true);
  ASSERT_EQ(any.size(), 1u);
  EXPECT_EQ(any[0], (std::vector<U32Key>{{0, 0, 0}}));
}

TEST(U32, ExemptFilters) {
  auto f = BuildExemptFilters({9090}, {*ParseCidr("10.9.0.1")});
  ASSERT_EQ(f.size(), 2u + 4u);
  EXPECT_EQ(f[0], (std::vector<U32Key>{{0x0A090001, ~0u, 12}}));
  EXPECT_EQ(f[1], (std::vector<U32Key>{{0x0A090001, ~0u, 16}}));
}

}  // namespace
}  // namespace faultline::faults::net
