// A partition of a real etcd cluster's leader, made by the net fault family: three etcd 3.4
// members in their own namespaces on a bridge; the fault runs in the leader's namespace (where
// its agent would run). Observed from outside with etcdctl from the hub namespace: the other two
// elect a new leader, the leader's "agent port" and the controller stay reachable throughout,
// and after healing the old leader rejoins with an equal raft index.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "faults/net/net_faults.h"
#include "faults/net/probe.h"
#include "net_lab.h"

extern char** environ;

namespace faultline::faults::net {
namespace {

using namespace std::chrono_literals;
using namespace testing;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using v1::NetFault;

constexpr uint16_t kAgentPort = 7102;

// Runs fn on a thread inside namespace ns (child processes it forks start there too).
template <typename Fn>
auto InNs(int ns, Fn fn) {
  decltype(fn()) out;
  std::thread([&] {
    InNetns in(ns);
    out = fn();
  }).join();
  return out;
}

std::string Capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>/dev/null").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

struct MemberStatus {
  uint64_t id = 0, leader = 0, raft_index = 0;
};

class EtcdStar : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    if (access("/usr/bin/etcd", X_OK) != 0 || access("/usr/bin/etcdctl", X_OK) != 0)
      GTEST_SKIP() << "etcd/etcdctl not installed";
    star_ = std::make_unique<Star>(3);
    dir_ = std::filesystem::temp_directory_path() / ("fl-net-etcd-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    std::string cluster;
    for (int i = 0; i < 3; ++i)
      cluster += (i ? "," : "") + Name(i) + "=http://" + star_->addr(i) + ":2380";
    for (int i = 0; i < 3; ++i) {
      const std::string a = star_->addr(i), d = (dir_ / Name(i)).string();
      std::vector<std::string> args = {"/usr/bin/etcd",
                                       "--name",
                                       Name(i),
                                       "--data-dir",
                                       d,
                                       "--listen-peer-urls",
                                       "http://" + a + ":2380",
                                       "--initial-advertise-peer-urls",
                                       "http://" + a + ":2380",
                                       "--listen-client-urls",
                                       "http://" + a + ":2379",
                                       "--advertise-client-urls",
                                       "http://" + a + ":2379",
                                       "--initial-cluster",
                                       cluster,
                                       "--initial-cluster-state",
                                       "new",
                                       "--heartbeat-interval",
                                       "50",
                                       "--election-timeout",
                                       "500",
                                       "--logger",
                                       "zap",
                                       "--log-outputs",
                                       d + ".log"};
      pids_.push_back(InNs(star_->member(i), [&] { return Spawn(args); }));
      // The member's agent stand-in: a listener on the agent port.
      agents_.push_back(InNs(star_->member(i), [&] { return Listen(a, kAgentPort); }));
    }
  }
  void TearDown() override {
    fault_.reset();
    for (pid_t p : pids_) {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
    for (int fd : agents_) close(fd);
    star_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  static std::string Name(int i) { return "m" + std::to_string(i); }

  static pid_t Spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
    return pid;
  }
  static int Listen(const std::string& ip, uint16_t port) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(l, 16);
    return l;
  }

  // Status of member i as etcdctl in the hub ("controller") namespace sees it.
  std::optional<MemberStatus> Status(int i) {
    const std::string out = InNs(star_->hub(), [&] {
      return Capture("ETCDCTL_API=3 /usr/bin/etcdctl --command-timeout=1s --endpoints=http://" +
                     star_->addr(i) + ":2379 endpoint status -w json");
    });
    json j = json::parse(out, nullptr, false);
    if (j.is_discarded() || !j.is_array() || j.empty()) return std::nullopt;
    // Fields at their zero value are omitted from etcdctl's JSON (e.g. "leader" while there is
    // none).
    const json s = j[0].value("Status", json::object());
    MemberStatus m;
    m.id = s.value("header", json::object()).value("member_id", uint64_t{0});
    m.leader = s.value("leader", uint64_t{0});
    m.raft_index = s.value("raftIndex", uint64_t{0});
    return m;
  }
  bool Put(int i, const std::string& key) {
    return InNs(star_->hub(), [&] {
      return system(("ETCDCTL_API=3 /usr/bin/etcdctl --command-timeout=2s --endpoints=http://" +
                     star_->addr(i) + ":2379 put " + key + " v >/dev/null 2>&1")
                        .c_str()) == 0;
    });
  }
  template <typename Pred>
  bool WaitFor(Pred pred, std::chrono::seconds limit) {
    const auto end = Clock::now() + limit;
    while (Clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  std::unique_ptr<Star> star_;
  std::filesystem::path dir_;
  std::vector<pid_t> pids_;
  std::vector<int> agents_;
  std::unique_ptr<Fault> fault_;
};

TEST_F(EtcdStar, LeaderPartitionElectsNewLeaderAndHealRejoins) {
  int leader = -1;
  uint64_t leader_id = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < 3; ++i) {
          auto s = Status(i);
          if (!s || s->leader == 0) return false;
          if (s->id == s->leader) leader = i, leader_id = s->id;
        }
        return leader >= 0;
      },
      30s))
      << "cluster did not elect a leader";
  ASSERT_TRUE(Put(leader, "before"));
  std::vector<int> others;
  for (int i = 0; i < 3; ++i)
    if (i != leader) others.push_back(i);

  // The fault, made in the leader's namespace as its agent would: cut it off from both peers.
  Registry registry;
  NetOptions opts;
  opts.exempt_ports = {kAgentPort};
  opts.exempt_cidrs = {*ParseCidr(star_->hub_addr())};  // the controller
  InNs(star_->member(leader), [&] {
    RegisterNetFaults(registry, opts);
    NetFault f;
    f.set_action(NetFault::PARTITION);
    f.set_direction(NetFault::BOTH);
    for (int o : others) f.add_to(star_->addr(o) + "/32");
    v1::FaultSpec spec;
    *spec.mutable_net() = f;
    fault_ = registry.Create(spec, {});
    fault_->Prepare();
    fault_->Apply();
    return 0;
  });
  const auto cut = Clock::now();

  uint64_t new_leader = 0;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto s = Status(others[0]);
        if (s && s->leader != 0 && s->leader != leader_id) new_leader = s->leader;
        return new_leader != 0;
      },
      20s))
      << "the majority did not elect a new leader";
  std::printf("new leader after %.2f s\n",
              std::chrono::duration<double>(Clock::now() - cut).count());
  // The partitioned member's agent and its controller link stay up through the fault.
  EXPECT_TRUE(InNs(star_->hub(), [&] { return CanConnectTo(star_->addr(leader), kAgentPort); }));
  EXPECT_TRUE(Status(leader).has_value()) << "controller lost the partitioned member";
  // The majority keeps committing; the old leader cannot.
  EXPECT_TRUE(Put(others[0], "during"));
  EXPECT_FALSE(Put(leader, "isolated"));

  InNs(star_->member(leader), [&] {
    fault_->Revert();
    return 0;
  });
  EXPECT_TRUE(Put(others[1], "after"));
  // Without pre-vote (etcd 3.4's default) the returning member's higher term may force one more
  // election, so any common leader will do; what matters is that all agree and catch up.
  uint64_t idx[3] = {}, lead[3] = {};
  EXPECT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < 3; ++i) {
          auto s = Status(i);
          if (!s) return false;
          idx[i] = s->raft_index;
          lead[i] = s->leader;
        }
        return lead[0] != 0 && lead[0] == lead[1] && lead[1] == lead[2] && idx[0] == idx[1] &&
               idx[1] == idx[2];
      },
      20s))
      << "after heal: leaders " << lead[0] << " " << lead[1] << " " << lead[2] << ", raft indexes "
      << idx[0] << " " << idx[1] << " " << idx[2];
  std::printf("healed: all members follow %llx at raft index %llu\n",
              static_cast<unsigned long long>(lead[0]), static_cast<unsigned long long>(idx[0]));
}

}  // namespace
}  // namespace faultline::faults::net
