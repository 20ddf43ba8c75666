// The etcd checks, workload and history checks against real etcd clusters on 127.0.0.1.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "controller/etcd/checks.h"
#include "controller/etcd/history_checks.h"
#include "controller/etcd/workload.h"
#include "tests/integration/verify/etcd_cluster.h"

namespace faultline::controller::etcd {
namespace {

using faultline::testing::EtcdCluster;
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

TEST(VerifyIntegration, HealthyClusterPassesEveryCheck) {
  EtcdCluster cluster(3);
  EtcdClient client(cluster.endpoints());
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
  // Evidence carries per-member numbers, read independently from every member.
  const json& counts = Find(rs, "key-count").evidence["counts"];
  for (const auto& ep : cluster.endpoints()) {
    EXPECT_EQ(counts["(all keys)"][ep], 36);
    EXPECT_EQ(counts["/a/"][ep], 25);
    EXPECT_EQ(counts["/b/"][ep], 11);
  }
  const json& hash = Find(rs, "hashkv").evidence["members"];
  EXPECT_EQ(hash.size(), 3u);
  EXPECT_EQ(Find(rs, "big-keys").evidence["largest"][0]["key"], "/b/big");
  EXPECT_EQ(Find(rs, "big-keys").evidence["largest"][0]["value_bytes"], 200 * 1024);
  EXPECT_EQ(Find(rs, "keys-per-prefix").evidence["prefixes"]["/a/"]["keys"], 25);
  const json& health = Find(rs, "health").evidence["members"];
  std::set<std::string> names;
  for (const auto& [ep, m] : health.items()) names.insert(m["name"].get<std::string>());
  EXPECT_EQ(names, (std::set<std::string>{"m0", "m1", "m2"}));
  // A lowered quota makes the db-size check fail: it really compares.
  EXPECT_FALSE(CheckDbSize(client, 1024, 0.9).passed);
  // A big-key threshold below the big value fails the inspection and names the key.
  o.big_value_bytes = 100 * 1024;
  auto inspect = InspectKeyspace(client, o);
  EXPECT_FALSE(inspect[0].passed);
  EXPECT_NE(inspect[0].summary.find("/b/big"), std::string::npos);
}

TEST(VerifyIntegration, WorkloadWithPausedFollowerIsLinearizable) {
  EtcdCluster cluster(3);
  EtcdClient client(cluster.endpoints());
  // Pause a follower: find the leader first.
  auto status = CollectStatus(client);
  int follower = -1;
  for (int i = 0; i < 3; ++i) {
    if (status[i].member_id != status[i].leader) follower = i;
  }
  ASSERT_GE(follower, 0);
  WorkloadOptions wo;
  wo.endpoints = cluster.endpoints();
  wo.clients = 6;
  wo.keys = 5;
  wo.rate = 300;
  wo.op_timeout = std::chrono::milliseconds(500);
  wo.seed = 42;
  Workload w(wo);
  w.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_EQ(::kill(cluster.pid(follower), SIGSTOP), 0);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  ASSERT_EQ(::kill(cluster.pid(follower), SIGCONT), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  w.Stop();
  const History& h = w.history();
  // The pause acted: clients pinned to the follower saw timeouts (unknown/failed outcomes).
  size_t on_follower_bad = 0, ok = 0;
  for (const Op& op : h.ops) {
    if (op.outcome == Outcome::kOk) ++ok;
    if (op.endpoint == cluster.client_endpoint(follower) && op.outcome != Outcome::kOk) {
      ++on_follower_bad;
    }
  }
  EXPECT_GT(on_follower_bad, 0u);
  EXPECT_GT(ok, 500u);
  std::vector<CheckResult> rs = CheckHistory(h);
  std::cerr << h.ops.size() << " ops, " << ok << " ok, " << on_follower_bad
            << " not ok on the paused follower, " << h.watch_events.size() << " watch events\n"
            << RenderTable(rs);
  for (const auto& r : rs) {
    EXPECT_TRUE(r.passed) << r.name << ": " << r.summary << "\n" << r.evidence.dump(2);
  }
  EXPECT_EQ(Find(rs, "linearizability").evidence["verdict"], "linearizable");
  EXPECT_EQ(Find(rs, "watch").evidence["watchers"].size(), 3u);
  // The recorded history round-trips through the saved format and still checks the same.
  std::stringstream saved;
  SaveJsonl(h, saved);
  History back = LoadJsonl(saved);
  EXPECT_EQ(back.ops.size(), h.ops.size());
  EXPECT_TRUE(CheckLinearizable(back).passed);
  // And a tampered copy is caught, so the pass above means something: a read R returned value
  // v, then an acknowledged write W replaced it, then a read L started after W returned — make L
  // return v again (a stale read).
  History bad = back;
  bool tampered = false;
  for (size_t wi = 0; wi < bad.ops.size() && !tampered; ++wi) {
    const Op& W = bad.ops[wi];
    bool acked = W.outcome == Outcome::kOk &&
                 (W.type == OpType::kPut || (W.type == OpType::kCas && W.succeeded));
    if (!acked) continue;
    const Op* R = nullptr;
    Op* L = nullptr;
    for (Op& op : bad.ops) {
      if (op.type != OpType::kGet || op.outcome != Outcome::kOk || op.key != W.key) continue;
      if (op.found && op.return_ns < W.invoke_ns) R = &op;  // the latest such read
      if (L == nullptr && op.invoke_ns > W.return_ns) L = &op;
    }
    if (R == nullptr || L == nullptr) continue;
    L->found = true;
    L->read_value = R->read_value;
    L->read_mod_revision = R->read_mod_revision;
    tampered = true;
  }
  ASSERT_TRUE(tampered);
  EXPECT_FALSE(CheckLinearizable(bad).passed);
  auto lat = LatencyPerSecond(h);
  EXPECT_GE(lat.size(), 6u);
}

// m2's data is replaced by a snapshot of a different cluster restored under m2's own identity
// (same name, peer URLs, cluster token, so same member and cluster IDs): it rejoins, replays the
// cluster's raft log on top of foreign data, and from then on holds keys the others do not.
TEST(VerifyIntegration, DivergedMemberFailsHashAndRevisionChecksByName) {
  EtcdCluster cluster(3);
  {
    EtcdClient client(cluster.endpoints());
    for (int i = 0; i < 20; ++i) Put(client, "/shared/k" + std::to_string(i), "v");
  }
  // The foreign snapshot: a one-member cluster with extra keys.
  EtcdCluster other(1);
  {
    EtcdClient oc(other.endpoints());
    for (int i = 0; i < 7; ++i) Put(oc, "/foreign/k" + std::to_string(i), "x");
  }
  std::string snap = (cluster.dir() / "foreign.db").string();
  std::string log = (cluster.dir() / "etcdctl.log").string();
  ASSERT_EQ(
      faultline::testing::Run({"/usr/bin/env", "ETCDCTL_API=3", "/usr/bin/etcdctl", "--endpoints",
                               other.client_endpoint(0), "snapshot", "save", snap},
                              log),
      0);
  const int victim = 2;
  for (int i = 0; i < 3; ++i) cluster.Stop(i);
  std::filesystem::remove_all(cluster.data_dir(victim));
  ASSERT_EQ(faultline::testing::Run(
                {"/usr/bin/env", "ETCDCTL_API=3", "/usr/bin/etcdctl", "snapshot", "restore", snap,
                 "--name", cluster.name(victim), "--data-dir", cluster.data_dir(victim).string(),
                 "--initial-cluster", cluster.initial_cluster(), "--initial-cluster-token",
                 cluster.token(), "--initial-advertise-peer-urls", cluster.peer_url(victim)},
                log),
            0);
  for (int i = 0; i < 3; ++i) cluster.Start(i);
  cluster.WaitHealthy();
  EtcdClient client(cluster.endpoints());
  ClusterCheckOptions o;
  o.prefixes = {"/shared/", "/foreign/"};
  std::vector<CheckResult> rs = RunClusterChecks(client, o);
  const std::string victim_label = "m2 (" + cluster.client_endpoint(victim) + ")";
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
  EXPECT_EQ(count.evidence["counts"]["/foreign/"][cluster.client_endpoint(victim)], 7);
  EXPECT_EQ(count.evidence["counts"]["/foreign/"][cluster.client_endpoint(0)], 0);
  EXPECT_EQ(count.evidence["counts"]["/shared/"][cluster.client_endpoint(victim)], 20);
  EXPECT_EQ(count.evidence["counts"]["(all keys)"][cluster.client_endpoint(victim)], 27);
  EXPECT_EQ(count.evidence["counts"]["(all keys)"][cluster.client_endpoint(0)], 20);
  std::cerr << RenderTable(rs);
}

TEST(VerifyIntegration, BadEndpointsGiveAClearError) {
  int port = faultline::testing::FreePort();  // nothing listens there
  std::string ep = "127.0.0.1:" + std::to_string(port);
  ClientOptions o;
  o.timeout = std::chrono::milliseconds(500);
  EtcdClient client({ep}, o);
  try {
    client.Status(0);
    FAIL() << "Status on a dead endpoint succeeded";
  } catch (const EtcdError& e) {
    std::string what = e.what();
    EXPECT_EQ(what.rfind("etcd " + ep + ": Status: ", 0), 0u) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos);
    EXPECT_EQ(e.endpoint(), ep);
  }
  CheckResult health = CheckHealth(client);
  EXPECT_FALSE(health.passed);
  EXPECT_EQ(health.summary.rfind("not answering: " + ep, 0), 0u) << health.summary;
  auto bad = [](const std::vector<std::string>& eps) {
    try {
      EtcdClient c(eps);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(bad({"localhost"}),
            "endpoints: \"localhost\" is not HOST:PORT (optionally with http:// or https://)");
  EXPECT_EQ(bad({"127.0.0.1:99999"}).substr(0, 30), "endpoints: \"127.0.0.1:99999\" i");
  EXPECT_EQ(bad({}), "endpoints: at least one is required");
  ClientOptions tls;
  tls.tls = true;
  tls.tls_files.ca_file = "/nonexistent/ca.pem";
  try {
    EtcdClient c({ep}, tls);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "tls ca: cannot read \"/nonexistent/ca.pem\"");
  }
}

}  // namespace
}  // namespace faultline::controller::etcd
