#include "controller/runner/targets.h"

#include <gtest/gtest.h>

#include <set>

namespace faultline::controller {
namespace {

using v1::TargetSelector;

std::vector<AgentInfo> FiveMembers() {
  std::vector<AgentInfo> a;
  for (int i = 1; i <= 5; ++i) {
    a.push_back({"unix:///a" + std::to_string(i),
                 "h",
                 {{"member", "e" + std::to_string(i)}, {"app", "etcd"}}});
  }
  a.push_back({"unix:///other", "h", {{"app", "proxy"}}});
  return a;
}

ClusterView Cluster() { return {{"e1", "e2", "e3", "e4", "e5"}, "e3"}; }

std::vector<std::string> Members(const std::vector<size_t>& idx,
                                 const std::vector<AgentInfo>& agents) {
  std::vector<std::string> out;
  for (size_t i : idx) out.push_back(agents[i].labels.at("member"));
  return out;
}

TEST(Targets, LeaderRoleLandsOnTheLeadersAgent) {
  auto agents = FiveMembers();
  TargetSelector sel;
  sel.set_role(TargetSelector::LEADER);
  sel.set_mode(TargetSelector::ONE);
  faults::Rng rng(1);
  EXPECT_EQ(Members(ResolveTargets(sel, agents, Cluster(), rng), agents),
            std::vector<std::string>{"e3"});
}

TEST(Targets, FollowersExcludeTheLeader) {
  auto agents = FiveMembers();
  TargetSelector sel;
  sel.set_role(TargetSelector::FOLLOWERS);
  faults::Rng rng(1);
  EXPECT_EQ(Members(ResolveTargets(sel, agents, Cluster(), rng), agents),
            (std::vector<std::string>{"e1", "e2", "e4", "e5"}));
}

TEST(Targets, MinorityAndMajoritySizesKeepOrLoseQuorum) {
  auto agents = FiveMembers();
  for (uint64_t seed = 0; seed < 50; ++seed) {
    TargetSelector sel;
    sel.set_role(TargetSelector::MINORITY);
    faults::Rng rng(seed);
    EXPECT_EQ(ResolveTargets(sel, agents, Cluster(), rng).size(), 2u);
    sel.set_role(TargetSelector::MAJORITY);
    faults::Rng rng2(seed);
    auto maj = Members(ResolveTargets(sel, agents, Cluster(), rng2), agents);
    EXPECT_EQ(maj.size(), 3u);
    EXPECT_NE(std::find(maj.begin(), maj.end(), "e3"), maj.end()) << "majority holds the leader";
  }
}

TEST(Targets, SameSeedSamePickDifferentSeedsSpread) {
  auto agents = FiveMembers();
  TargetSelector sel;
  (*sel.mutable_match_labels())["app"] = "etcd";
  sel.set_mode(TargetSelector::ONE);
  std::set<size_t> seen;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    faults::Rng a(seed), b(seed);
    auto x = ResolveTargets(sel, agents, Cluster(), a);
    auto y = ResolveTargets(sel, agents, Cluster(), b);
    ASSERT_EQ(x, y);
    ASSERT_EQ(x.size(), 1u);
    EXPECT_LT(x[0], 5u) << "the proxy agent does not carry app=etcd";
    seen.insert(x[0]);
  }
  EXPECT_EQ(seen.size(), 5u) << "40 seeds should reach every candidate";
}

TEST(Targets, Modes) {
  auto agents = FiveMembers();
  TargetSelector sel;
  (*sel.mutable_match_labels())["app"] = "etcd";
  faults::Rng rng(3);
  sel.set_mode(TargetSelector::ALL);
  EXPECT_EQ(ResolveTargets(sel, agents, Cluster(), rng).size(), 5u);
  sel.set_mode(TargetSelector::FIXED);
  sel.set_value(2);
  EXPECT_EQ(ResolveTargets(sel, agents, Cluster(), rng).size(), 2u);
  sel.set_mode(TargetSelector::FIXED_PERCENT);
  sel.set_value(60);
  EXPECT_EQ(ResolveTargets(sel, agents, Cluster(), rng).size(), 3u);  // floor(5 * 0.6)
  sel.set_mode(TargetSelector::RANDOM_MAX_PERCENT);
  sel.set_value(40);
  std::set<size_t> sizes;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    faults::Rng r(seed);
    size_t n = ResolveTargets(sel, agents, Cluster(), r).size();
    EXPECT_LE(n, 2u);
    sizes.insert(n);
  }
  EXPECT_EQ(sizes, (std::set<size_t>{0, 1, 2}));
}

TEST(Targets, ErrorsNameTheField) {
  auto agents = FiveMembers();
  TargetSelector sel;
  sel.set_mode(TargetSelector::FIXED);
  sel.set_value(9);
  faults::Rng rng(1);
  try {
    ResolveTargets(sel, agents, Cluster(), rng);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("target.value"), std::string::npos) << e.what();
  }
  TargetSelector leader;
  leader.set_role(TargetSelector::LEADER);
  ClusterView no_leader = Cluster();
  no_leader.leader.clear();
  EXPECT_THROW(ResolveTargets(leader, agents, no_leader, rng), std::invalid_argument);
  TargetSelector named;
  named.add_members("e9");
  EXPECT_THROW(ResolveTargets(named, agents, Cluster(), rng), std::invalid_argument);
  // The leader's member has no agent: an error, not a silent miss.
  auto missing = FiveMembers();
  missing.erase(missing.begin() + 2);
  EXPECT_THROW(ResolveTargets(leader, missing, Cluster(), rng), std::invalid_argument);
}

TEST(Targets, MemberNames) {
  auto agents = FiveMembers();
  TargetSelector sel;
  sel.add_members("e2");
  sel.add_members("e5");
  faults::Rng rng(1);
  EXPECT_EQ(Members(ResolveTargets(sel, agents, Cluster(), rng), agents),
            (std::vector<std::string>{"e2", "e5"}));
}

TEST(Targets, SubstituteLabels) {
  v1::FaultSpec spec;
  spec.mutable_process()->mutable_target()->set_cmdline("--name ${label:member} ");
  SubstituteLabels(&spec, {{"member", "e4"}});
  EXPECT_EQ(spec.process().target().cmdline(), "--name e4 ");
  v1::FaultSpec bad;
  bad.mutable_process()->mutable_target()->set_cmdline("${label:zone}");
  EXPECT_THROW(SubstituteLabels(&bad, {{"member", "e4"}}), std::invalid_argument);
}

}  // namespace
}  // namespace faultline::controller
