// etcd-io/etcd#12291 on a real lab: etcd 3.4's lessor orders lease expiry by wall-clock
// UnixNano, so stepping the leader's wall clock back keeps a lease (and its keys) alive past
// its TTL; 3.5 fixed it. Measured by an independent etcdctl reading the key from a follower.
#include <gtest/gtest.h>
#include <unistd.h>

#include <iostream>
#include <regex>
#include <thread>

#include "faults/sys/command.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_lab.h"

namespace faultline::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Version {
  const char* name;
  std::string etcd;
};

class LeaseSkewTest : public ::testing::TestWithParam<Version> {};

std::string Etcdctl(const std::string& endpoint, std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/etcdctl", "--endpoints", endpoint, "--command-timeout=3s"});
  auto r = sys::RunCommand(args, 10s);
  return r.exit_code == 0 ? r.out : "ERROR " + r.err;
}

TEST_P(LeaseSkewTest, LeadersWallClockSteppedBackKeepsALeasedKeyPastItsTtl) {
  if (geteuid() != 0) GTEST_SKIP() << "the lab needs root";
  const Version v = GetParam();
  if (access(v.etcd.c_str(), X_OK) != 0)
    GTEST_SKIP() << "etcd " << v.name << " not installed at " << v.etcd;
  lab::LabOptions o;
  o.etcd = v.etcd;
  o.no_controller = true;
  o.overlay = false;
  TestLab lab(o);
  std::string leader = lab.EtcdctlLeader();
  ASSERT_FALSE(leader.empty());
  const int li = lab.IndexOf(leader);
  const std::string leader_url = lab.endpoints()[li];
  const std::string follower_url = lab.endpoints()[(li + 1) % lab.size()];

  std::string grant = Etcdctl(leader_url, {"lease", "grant", "10"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(grant, m, std::regex("lease ([0-9a-f]+) granted"))) << grant;
  const std::string lease = m[1];
  auto granted = Clock::now();
  ASSERT_EQ(Etcdctl(leader_url, {"put", "/skew/key", "v", "--lease=" + lease}).rfind("OK", 0), 0u);

  // The leader's etcd reads its wall clock 60 s in the past for 40 s, through the built CLI and
  // the leader's agent, as a user types it.
  auto inject = sys::RunCommand(
      {Binary("cli/faultline"), "--lab", lab.name(), "--target", leader, "-o", "json", "inject",
       "time", "offset", "--managed", "etcd", "--offset", "-60s", "--duration", "40s"},
      30s);
  ASSERT_EQ(inject.exit_code, 0) << inject.out << inject.err;
  std::cout << inject.out << "\n";
  ASSERT_NE(inject.out.find("time/offset"), std::string::npos) << inject.out;

  // Poll from a follower until the key is gone (or 60 s pass).
  double lived = -1;
  while (Clock::now() - granted < 60s) {
    std::string out = Etcdctl(follower_url, {"get", "/skew/key", "--print-value-only"});
    if (out.rfind("ERROR", 0) != 0 && out.find('v') == std::string::npos) {
      lived = std::chrono::duration<double>(Clock::now() - granted).count();
      break;
    }
    std::this_thread::sleep_for(500ms);
  }
  EXPECT_EQ(lab.EtcdctlLeader(), leader) << "leadership moved during the test";
  std::cout << "etcd " << v.name << ": a 10 s lease's key lived " << lived
            << " s with the leader's clock stepped back 60 s for 40 s\n";
  if (std::string(v.name).rfind("3.4", 0) == 0) {
    EXPECT_TRUE(lived < 0 || lived > 25) << "3.4 expired the lease on time: " << lived << " s";
  } else {
    EXPECT_GT(lived, 0) << "the key never expired";
    EXPECT_LT(lived, 16) << "3.5 kept the lease past its TTL";
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, LeaseSkewTest,
                         ::testing::Values(Version{"3.4.23", "/usr/bin/etcd"},
                                           Version{"3.5.30",
                                                   "/var/lib/faultline/etcd/3.5.30/usr/bin/etcd"}),
                         [](const auto& p) {
                           std::string n = p.param.name;
                           for (auto& c : n) c = c == '.' ? '_' : c;
                           return "etcd_" + n;
                         });

}  // namespace
}  // namespace faultline::testing
