// The etcd checks, workload and history checks on the lab: three real etcd members in their own
// network namespaces, each supervised by its agent with its data dir on the agent's FUSE
// overlay. Faults go in through the agents with the faultline CLI, as a user would inject them;
// their effect is read from outside (etcdctl, the member processes), and the verdicts from the
// checks' own evidence.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "bench/verify/history_gen.h"
#include "controller/etcd/checks.h"
#include "controller/etcd/history_checks.h"
#include "controller/etcd/workload.h"
#include "faults/process/proc.h"
#include "tests/integration/verify/etcd_cluster.h"
#include "tests/support/test_lab.h"

namespace faultline::controller::etcd {
namespace {

using namespace std::chrono_literals;
using faultline::testing::TestLab;
using nlohmann::json;

const CheckResult& Find(const std::vector<CheckResult>& rs, const std::string& name) {
  for (const auto& r : rs) {
    if (r.name == name) return r;
  }
  throw std::runtime_error("no check " + name);
}

void Put(const EtcdClient& c, const std::string& k, const std::string& v) {
  pb::PutRequest req;
  req.set_key(k);
  req.set_value(v);
  c.Put(0, req);
}

// The last lines of a log, for failure messages.
std::string Tail(const std::string& path, size_t lines = 15) {
  std::ifstream in(path);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) all.push_back(line);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    out += all[i] + "\n";
  }
  return out;
}

bool AllPass(const std::vector<CheckResult>& rs) {
  for (const auto& r : rs) {
    if (!r.passed) return false;
  }
  return true;
}

class VerifyLab : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, FUSE)";
    lab_ = std::make_unique<TestLab>();
    ASSERT_TRUE(faultline::testing::WaitFor([&] { return !lab_->EtcdctlLeader().empty(); }, 30s))
        << "no leader";
  }
  lab::CommandResult Cli(std::vector<std::string> args, std::chrono::milliseconds t = 30s) {
    args.insert(args.begin(), faultline::testing::Binary("cli/faultline"));
    return lab::RunCommand(args, t);
  }
  lab::CommandResult Etcdctl(const std::string& endpoint, std::vector<std::string> args) {
    args.insert(args.begin(),
                {"/usr/bin/env", "ETCDCTL_API=3", "/usr/bin/etcdctl", "--dial-timeout=1s",
                 "--command-timeout=2s", "--endpoints", endpoint});
    return lab::RunCommand(args, 10s);
  }
  // "e1=http://A:2380,e2=..." as the lab started etcd with it.
  std::string InitialCluster() const {
    std::string out;
    for (const auto& m : lab_->info().members) {
      out += (out.empty() ? "" : ",") + m.name + "=" + m.peer_url;
    }
    return out;
  }
  // An address of the lab's subnet that no member has.
  std::string UnusedAddress() const {
    std::string a = lab_->info().members[0].address;
    return a.substr(0, a.rfind('.')) + ".250";
  }
  std::unique_ptr<TestLab> lab_;
};

TEST_F(VerifyLab, HealthyLabPassesEveryCheck) {
  EtcdClient client(lab_->endpoints());
  for (int i = 0; i < 25; ++i) Put(client, "/a/key" + std::to_string(i), "v");
  for (int i = 0; i < 10; ++i) Put(client, "/b/key" + std::to_string(i), "v");
  Put(client, "/b/big", std::string(200 * 1024, 'x'));
  ClusterCheckOptions o;
  o.prefixes = {"/a/", "/b/"};
  std::vector<CheckResult> rs = RunClusterChecks(client, o);
  for (const auto& r : rs) {
    EXPECT_TRUE(r.passed) << r.name << ": " << r.summary << "\n" << r.evidence.dump(2);
  }
  ASSERT_EQ(rs.size(), 9u) << RenderTable(rs);
  // Evidence carries per-member numbers, read from every member on its own address.
  const json& counts = Find(rs, "key-count").evidence["counts"];
  for (const auto& ep : lab_->endpoints()) {
    std::string hostport = ep.substr(std::string("http://").size());
    EXPECT_EQ(counts["(all keys)"][hostport], 36) << counts.dump();
    EXPECT_EQ(counts["/a/"][hostport], 25);
    EXPECT_EQ(counts["/b/"][hostport], 11);
  }
  EXPECT_EQ(Find(rs, "hashkv").evidence["members"].size(), 3u);
  EXPECT_EQ(Find(rs, "big-keys").evidence["largest"][0]["key"], "/b/big");
  std::set<std::string> names;
  for (const auto& [ep, m] : Find(rs, "health").evidence["members"].items()) {
    names.insert(m["name"].get<std::string>());
  }
  EXPECT_EQ(names, (std::set<std::string>{"e1", "e2", "e3"}));
  // The member the health check finds leading is the one etcdctl names.
  std::string leader;
  for (const auto& [ep, m] : Find(rs, "health").evidence["members"].items()) {
    if (m["member_id"] == m["leader"]) leader = m["name"];
  }
  EXPECT_EQ(leader, lab_->EtcdctlLeader());
  // A lowered quota makes the db-size check fail: it really compares.
  EXPECT_FALSE(CheckDbSize(client, 1024, 0.9).passed);

  // The same through the CLI a user runs.
  auto cli =
      Cli({"check", "etcd", "--endpoints", lab_->EndpointsCsv(), "--prefix", "/a/", "-o", "json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.out << cli.err;
  json j = json::parse(cli.out);
  EXPECT_TRUE(j["passed"].get<bool>()) << cli.out;
  EXPECT_EQ(j["checks"].size(), 9u);

  // A workload on the healthy lab: every history check passes.
  WorkloadOptions wo;
  wo.endpoints = lab_->endpoints();
  wo.clients = 6;
  wo.keys = 5;
  wo.rate = 300;
  wo.seed = 7;
  Workload w(wo);
  w.Start();
  std::this_thread::sleep_for(3s);
  w.Stop();
  std::vector<CheckResult> hs = CheckHistory(w.history());
  EXPECT_TRUE(AllPass(hs)) << RenderTable(hs);
  EXPECT_GT(w.history().ops.size(), 300u);
  EXPECT_EQ(Find(hs, "watch").evidence["watchers"].size(), 3u);
}

// A follower cut off from the other two members by a partition its agent installs (nftables in
// the member's namespace). Clients keep talking to every member, with linearizable reads: the
// ones pinned to the follower time out instead of reading stale data, and the history stays
// linearizable through the partition and the healing.
TEST_F(VerifyLab, FollowerPartitionKeepsTheHistoryLinearizable) {
  const std::string leader = lab_->EtcdctlLeader();
  ASSERT_FALSE(leader.empty());
  const lab::MemberInfo* follower = nullptr;
  std::vector<std::string> peers;
  for (const auto& m : lab_->info().members) {
    if (m.name != leader && follower == nullptr) {
      follower = &m;
    } else {
      peers.push_back(m.address + "/32");
    }
  }
  ASSERT_NE(follower, nullptr);
  const lab::MemberInfo* leader_member = lab_->info().Member(leader);

  WorkloadOptions wo;
  wo.endpoints = lab_->endpoints();
  wo.clients = 6;  // pinned: two per member
  wo.keys = 5;
  wo.rate = 300;
  wo.op_timeout = 500ms;
  wo.seed = 42;
  Workload w(wo);
  w.Start();
  std::this_thread::sleep_for(1500ms);

  auto inject = Cli({"--lab", lab_->name(), "--target", follower->name, "inject", "net",
                     "partition", "--peer", peers[0], "--peer", peers[1], "--direction", "both",
                     "--duration", "60s", "-o", "json"});
  ASSERT_EQ(inject.exit_code, 0) << inject.out << inject.err;
  // From outside: the follower still answers a serializable read from this host, but cannot
  // serve a linearizable one, while the leader can; and it falls behind the leader.
  EXPECT_TRUE(faultline::testing::WaitFor(
      [&] {
        return Etcdctl(follower->client_url, {"get", "--consistency=l", "probe"}).exit_code != 0;
      },
      10s));
  EXPECT_EQ(Etcdctl(follower->client_url, {"get", "--consistency=s", "probe"}).exit_code, 0);
  EXPECT_EQ(Etcdctl(leader_member->client_url, {"put", "during-partition", "x"}).exit_code, 0);
  auto follower_get = Etcdctl(follower->client_url,
                              {"get", "--consistency=s", "--print-value-only", "during-partition"});
  EXPECT_EQ(follower_get.out, "") << "the partitioned follower saw a write it cannot have";
  std::this_thread::sleep_for(3s);

  auto recover = Cli({"--lab", lab_->name(), "--target", follower->name, "recover", "--all"});
  ASSERT_EQ(recover.exit_code, 0) << recover.out << recover.err;
  // Healed: the follower catches up on what it missed.
  EXPECT_TRUE(faultline::testing::WaitFor(
      [&] {
        return Etcdctl(follower->client_url,
                       {"get", "--consistency=s", "--print-value-only", "during-partition"})
                   .out == "x\n";
      },
      20s));
  std::this_thread::sleep_for(2s);
  w.Stop();

  const History& h = w.history();
  size_t ok = 0, follower_not_ok = 0;
  for (const Op& op : h.ops) {
    if (op.outcome == Outcome::kOk) ++ok;
    if (op.endpoint == follower->client_url.substr(std::string("http://").size()) &&
        op.outcome != Outcome::kOk) {
      ++follower_not_ok;
    }
  }
  EXPECT_GT(follower_not_ok, 0u) << "the partition did not reach the follower's clients";
  EXPECT_GT(ok, 500u);
  std::vector<CheckResult> rs = CheckHistory(h);
  std::cerr << h.ops.size() << " ops, " << ok << " ok, " << follower_not_ok
            << " not ok on the partitioned follower, " << h.watch_events.size() << " watch events\n"
            << RenderTable(rs);
  for (const auto& r : rs) {
    EXPECT_TRUE(r.passed) << r.name << ": " << r.summary << "\n" << r.evidence.dump(2);
  }
  EXPECT_EQ(Find(rs, "linearizability").evidence["verdict"], "linearizable");
  EXPECT_EQ(Find(rs, "watch").evidence["watchers"].size(), 3u);

  // After healing, the cluster checks pass again (within a bounded wait for the members to agree
  // on a leader and catch up).
  EtcdClient client(lab_->endpoints());
  std::vector<CheckResult> after;
  EXPECT_TRUE(faultline::testing::WaitFor(
      [&] {
        after = RunClusterChecks(client, {});
        return AllPass(after);
      },
      30s))
      << RenderTable(after);

  // The saved history checks the same, and a tampered copy is caught, so the pass above means
  // something: a read that began after an acknowledged write returned is made to return the
  // value that write replaced, at the store revision from before it (a stale read).
  std::stringstream saved;
  SaveJsonl(h, saved);
  History back = LoadJsonl(saved);
  EXPECT_TRUE(CheckLinearizable(back).passed);
  History bad = back;
  int64_t stale = bench::MakeStaleRead(&bad, 0.5);
  ASSERT_GE(stale, 0);
  LinearizabilityResult lr = CheckLinearizability(bad);
  ASSERT_EQ(lr.verdict, LinearizabilityResult::Verdict::kNotLinearizable);
  EXPECT_EQ(lr.failures[0].failing_op, stale) << RenderFailure(lr.failures[0]);
  EXPECT_LE(lr.failures[0].prefix_ops, 10u) << RenderFailure(lr.failures[0]);
}

// e3's data is replaced by a snapshot of another cluster restored under e3's own identity (same
// name, peer URL, cluster token, so the same member and cluster IDs), with etcd killed and
// started again through the agents: it rejoins, replays the cluster's log on top of the foreign
// data, and from then on holds keys the others do not.
TEST_F(VerifyLab, DivergedMemberFailsHashAndRevisionChecksByName) {
  {
    EtcdClient client(lab_->endpoints());
    for (int i = 0; i < 20; ++i) Put(client, "/shared/k" + std::to_string(i), "v");
  }
  // The foreign snapshot: a one-member cluster on loopback with extra keys.
  faultline::testing::EtcdCluster other(1);
  {
    EtcdClient oc(other.endpoints());
    for (int i = 0; i < 7; ++i) Put(oc, "/foreign/k" + std::to_string(i), "x");
  }
  const std::string snap = (lab_->root() / "foreign.db").string();
  auto save = Etcdctl(other.client_endpoint(0), {"snapshot", "save", snap});
  ASSERT_EQ(save.exit_code, 0) << save.out << save.err;

  const lab::MemberInfo& victim = lab_->info().members[2];
  auto kill = Cli({"--lab", lab_->name(), "--target", victim.name, "inject", "process", "kill",
                   "--managed", "etcd"});
  ASSERT_EQ(kill.exit_code, 0) << kill.out << kill.err;
  ASSERT_TRUE(faultline::testing::WaitFor(
      [&] { return !faults::process::SameProcess(victim.etcd_pid, victim.etcd_start_time); }, 10s))
      << "etcd of " << victim.name << " still runs";
  EXPECT_NE(Etcdctl(victim.client_url, {"endpoint", "status"}).exit_code, 0);

  // The data dir is the agent's overlay mount point: swap what is under it.
  const std::filesystem::path restored = lab_->root() / "restored";
  auto restore = lab::RunCommand(
      {"/usr/bin/env", "ETCDCTL_API=3", "/usr/bin/etcdctl", "snapshot", "restore", snap, "--name",
       victim.name, "--data-dir", restored.string(), "--initial-cluster", InitialCluster(),
       "--initial-cluster-token", "faultline-lab-" + lab_->name(), "--initial-advertise-peer-urls",
       victim.peer_url},
      30s);
  ASSERT_EQ(restore.exit_code, 0) << restore.out << restore.err;
  for (const auto& e : std::filesystem::directory_iterator(victim.data_dir)) {
    std::filesystem::remove_all(e.path());
  }
  std::filesystem::copy(restored, victim.data_dir, std::filesystem::copy_options::recursive);

  // The leader still remembers how far e3's old log went and would tell the shorter restored
  // log to commit past its end (etcd panics on that): a restarted leader forgets it, as a new
  // term starts with fresh progress for every follower.
  std::string leader;
  ASSERT_TRUE(
      faultline::testing::WaitFor([&] { return !(leader = lab_->EtcdctlLeader()).empty(); }, 30s));
  auto bounce = Cli({"--lab", lab_->name(), "--target", leader, "inject", "process", "restart",
                     "--managed", "etcd"},
                    90s);
  ASSERT_EQ(bounce.exit_code, 0) << bounce.out << bounce.err;
  auto start = Cli({"--lab", lab_->name(), "--target", victim.name, "inject", "process", "restart",
                    "--managed", "etcd", "-o", "json"},
                   90s);
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err << Tail(victim.dir + "/etcd.log");
  EtcdClient client(lab_->endpoints());
  ASSERT_TRUE(faultline::testing::WaitFor([&] { return CheckHealth(client).passed; }, 30s))
      << CheckHealth(client).summary;
  ClusterCheckOptions o;
  o.prefixes = {"/shared/", "/foreign/"};
  std::vector<CheckResult> rs;
  // Wait until e3 has replayed the shared keys (its count catches up), then judge.
  const std::string victim_ep = victim.client_url.substr(std::string("http://").size());
  ASSERT_TRUE(faultline::testing::WaitFor(
      [&] {
        rs = RunClusterChecks(client, o);
        return Find(rs, "key-count").evidence["counts"]["/shared/"][victim_ep] == 20;
      },
      30s))
      << RenderTable(rs);
  const std::string victim_label = victim.name + " (" + victim_ep + ")";
  EXPECT_TRUE(Find(rs, "health").passed) << Find(rs, "health").summary;
  const CheckResult& hash = Find(rs, "hashkv");
  EXPECT_FALSE(hash.passed) << hash.summary;
  EXPECT_EQ(hash.evidence["divergent"], json::array({victim_label})) << hash.evidence.dump(2);
  const CheckResult& rev = Find(rs, "revision");
  EXPECT_FALSE(rev.passed) << rev.summary;
  EXPECT_NE(rev.summary.find(victim_label), std::string::npos) << rev.summary;
  const CheckResult& count = Find(rs, "key-count");
  EXPECT_FALSE(count.passed) << count.summary;
  EXPECT_EQ(count.evidence["divergent"]["/foreign/"], json::array({victim_label}));
  EXPECT_EQ(count.evidence["counts"]["/foreign/"][victim_ep], 7);
  const std::string e1_ep = lab_->info().members[0].client_url.substr(7);
  EXPECT_EQ(count.evidence["counts"]["/foreign/"][e1_ep], 0);
  EXPECT_EQ(count.evidence["counts"]["(all keys)"][victim_ep], 27);
  // Independently: etcdctl on e3 alone sees the foreign keys, on e1 it does not.
  auto count_on = [&](const lab::MemberInfo& m) {
    auto r = Etcdctl(m.client_url, {"get", "--consistency=s", "--prefix", "--keys-only", "-w",
                                    "json", "/foreign/"});
    json j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? -1 : j.value("count", 0);
  };
  EXPECT_EQ(count_on(victim), 7);
  EXPECT_EQ(count_on(lab_->info().members[0]), 0);
  std::cerr << RenderTable(rs);
}

TEST_F(VerifyLab, BadEndpointsGiveAClearError) {
  const std::string nobody = UnusedAddress() + ":2379";
  const std::string closed = lab_->info().members[0].address + ":2399";  // no listener
  // The library: one line naming the endpoint and the RPC.
  ClientOptions o;
  o.timeout = 500ms;
  for (const std::string& ep : {nobody, closed}) {
    EtcdClient client({ep}, o);
    try {
      client.Status(0);
      ADD_FAILURE() << "Status on " << ep << " succeeded";
    } catch (const EtcdError& e) {
      std::string what = e.what();
      EXPECT_EQ(what.rfind("etcd " + ep + ": Status: ", 0), 0u) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      EXPECT_EQ(e.endpoint(), ep);
    }
  }
  // The CLI: nothing answering is a usage-level error (exit 2) naming the endpoints, not a
  // verdict about a cluster.
  auto none = Cli({"check", "etcd", "--endpoints", nobody + "," + closed, "--timeout-ms", "500"});
  EXPECT_EQ(none.exit_code, 2) << none.out << none.err;
  EXPECT_EQ(none.err.rfind("faultline: error: no etcd endpoint answered: etcd ", 0), 0u)
      << none.err;
  EXPECT_NE(none.err.find("(and 1 more)"), std::string::npos) << none.err;
  // One dead endpoint among the lab's members: the checks run and name it.
  auto mixed = Cli({"check", "etcd", "--endpoints", lab_->EndpointsCsv() + "," + closed,
                    "--timeout-ms", "500", "-o", "json"});
  EXPECT_EQ(mixed.exit_code, 1) << mixed.out << mixed.err;
  json j = json::parse(mixed.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << mixed.out;
  for (const auto& c : j["checks"]) {
    if (c["name"] != "health") continue;
    EXPECT_FALSE(c["passed"].get<bool>());
    EXPECT_EQ(c["summary"].get<std::string>().rfind("not answering: " + closed, 0), 0u) << c.dump();
  }
  // Malformed endpoints are refused before anything is dialled, naming the field.
  auto malformed = Cli({"check", "etcd", "--endpoints", "localhost"});
  EXPECT_EQ(malformed.exit_code, 2);
  EXPECT_NE(malformed.err.find("endpoints: \"localhost\" is not HOST:PORT"), std::string::npos)
      << malformed.err;
  auto tls = Cli(
      {"check", "etcd", "--endpoints", lab_->EndpointsCsv(), "--cacert", "/nonexistent/ca.pem"});
  EXPECT_EQ(tls.exit_code, 2);
  EXPECT_NE(tls.err.find("tls ca: cannot read \"/nonexistent/ca.pem\""), std::string::npos)
      << tls.err;
}

}  // namespace
}  // namespace faultline::controller::etcd
