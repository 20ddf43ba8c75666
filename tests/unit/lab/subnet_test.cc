#include "deploy/lab/subnet.h"

#include <gtest/gtest.h>

#include "deploy/lab/lab.h"
#include "faults/core/errors.h"

namespace faultline::lab {
namespace {

Prefix P(const char* text) { return *ParsePrefix(text); }

TEST(Subnet, ParsesAndFormats) {
  EXPECT_EQ(FormatPrefix(P("10.213.7.0/24")), "10.213.7.0/24");
  EXPECT_EQ(*ParseIpv4("192.0.2.1"), 0xC0000201u);
  EXPECT_FALSE(ParsePrefix("10.0.0.0"));
  EXPECT_FALSE(ParsePrefix("10.0.0.0/33"));
  EXPECT_FALSE(ParsePrefix("10.0.0/24"));
  EXPECT_FALSE(ParsePrefix("10.0.0.0/2x"));
}

TEST(Subnet, Overlap) {
  EXPECT_TRUE(Overlaps(P("10.213.7.0/24"), P("10.0.0.0/8")));
  EXPECT_TRUE(Overlaps(P("10.213.7.0/24"), P("10.213.7.128/25")));
  EXPECT_FALSE(Overlaps(P("10.213.7.0/24"), P("10.213.8.0/24")));
  EXPECT_FALSE(Overlaps(P("10.213.7.0/24"), P("192.0.2.0/24")));
}

TEST(Subnet, ChoosesAFreeSlashTwentyFourStableForAName) {
  auto a = ChooseLabSubnet({}, "demo");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->len, 24);
  EXPECT_EQ(a->net >> 16, (10u << 8) | 213u);
  EXPECT_EQ(ChooseLabSubnet({}, "demo"), a);  // same name, same addresses
  // Taken: the choice moves to another /24 that overlaps nothing taken.
  std::vector<Prefix> taken = {*a, P("192.0.2.0/24"), P("0.0.0.0/0")};
  auto b = ChooseLabSubnet(taken, "demo");
  ASSERT_TRUE(b);
  EXPECT_NE(*b, *a);
  for (const auto& t : taken) {
    if (t.len > 0) {
      EXPECT_FALSE(Overlaps(*b, t)) << FormatPrefix(*b);
    }
  }
}

TEST(Subnet, DefaultRouteDoesNotBlockButABroadRouteDoes) {
  auto a = ChooseLabSubnet({P("0.0.0.0/0"), P("10.213.0.0/16")}, "x");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->net >> 16, (10u << 8) | 214u);
  EXPECT_FALSE(ChooseLabSubnet({P("10.0.0.0/8")}, "x"));
}

TEST(Subnet, MemberAndBridgeAddresses) {
  Prefix s = P("10.213.7.0/24");
  EXPECT_EQ(FormatIpv4(BridgeAddress(s)), "10.213.7.1");
  EXPECT_EQ(FormatIpv4(MemberAddress(s, 1)), "10.213.7.11");
  EXPECT_EQ(FormatIpv4(MemberAddress(s, 5)), "10.213.7.15");
  // The IPv6 lab's ULA /64 reads like its /24.
  EXPECT_EQ(sys::FormatIp(Ipv6LabNet(s)), "fd00:fa17:213:7::");
  EXPECT_EQ(sys::FormatIp(Ipv6BridgeAddress(s)), "fd00:fa17:213:7::1");
  EXPECT_EQ(sys::FormatIp(Ipv6MemberAddress(s, 1)), "fd00:fa17:213:7::11");
  EXPECT_EQ(sys::FormatIp(Ipv6MemberAddress(P("10.215.254.0/24"), 5)), "fd00:fa17:215:254::15");
  EXPECT_NE(Ipv6LabNet(P("10.213.7.0/24")), Ipv6LabNet(P("10.214.7.0/24")));
}

TEST(LabNames, KernelNamesFitAndAreDistinct) {
  std::string lab = "a-rather-long-lab-name-of-32-chr";
  ASSERT_EQ(lab.size(), 32u);
  EXPECT_LE(BridgeName(lab).size(), 15u);
  EXPECT_LE(VethName(lab, 9).size(), 15u);
  EXPECT_NE(BridgeName(lab), BridgeName("other"));
  EXPECT_NE(VethName(lab, 1), VethName(lab, 2));
  EXPECT_EQ(NetnsName(lab, 3), "fl-" + lab + "-e3");
}

TEST(LabNames, BadNamesAreRefusedNamingTheFlag) {
  for (const char* bad :
       {"", "has space", "slash/no", "dots.no", "this-name-is-longer-than-thirty-two"}) {
    try {
      ValidateLabName(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const faults::ValidationError& e) {
      ASSERT_EQ(e.errors().size(), 1u);
      EXPECT_EQ(e.errors()[0].field, "--name");
    }
  }
  EXPECT_NO_THROW(ValidateLabName("ci_lab-42"));
}

}  // namespace
}  // namespace faultline::lab
