// The etcd checks, workload and history checks on the lab (issue 8's "integration on the lab"):
// real etcd members in their own network namespaces, each supervised by its agent, faults
// injected through the agents with the faultline CLI. Effects are observed from outside with an
// independent etcdctl (lab::QueryEtcd, `etcdctl get`), never from the agent's own report.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "controller/verify/checks.h"
#include "controller/verify/history_checks.h"
#include "controller/verify/workload.h"
#include "faults/process/proc.h"
#include "tests/integration/verify/etcd_cluster.h"
#include "tests/support/shared_lab_test.h"
#include "tests/support/test_lab.h"

namespace faultline::verify {
namespace {

using namespace std::chrono_literals;
using faultline::testing::TestLab;
using faultline::testing::WaitFor;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* kEtcdctl = "/usr/bin/etcdctl";

// A member's client endpoint as the client library names it (host:port, no scheme).
std::string HostPort(const lab::MemberInfo& m) { return m.address + ":2379"; }

std::string Tail(const std::string& path, size_t bytes = 3000) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

const CheckResult& Find(const std::vector<CheckResult>& rs, const std::string& name) {
  for (const auto& r : rs) {
    if (r.name == name) return r;
  }
  throw std::runtime_error("no check " + name);
}

const json& FindJson(const json& report, const std::string& name) {
  for (const auto& c : report.at("checks")) {
    if (c.at("name") == name) return c;
  }
  throw std::runtime_error("no check " + name + " in " + report.dump());
}

void Put(const EtcdClient& c, const std::string& k, const std::string& v) {
  pb::PutRequest req;
  req.set_key(k);
  req.set_value(v);
  c.Put(0, req);
}

lab::CommandResult Cli(std::vector<std::string> args, std::chrono::milliseconds t = 30s) {
  args.insert(args.begin(), faultline::testing::Binary("cli/faultline"));
  return lab::RunCommand(args, t);
}

// `etcdctl get` through one endpoint, linearizable or serializable: the outside observer.
lab::CommandResult EtcdctlGet(const std::string& endpoint, const std::string& key,
                              bool linearizable) {
  return lab::RunCommand(
      {kEtcdctl, "--endpoints", endpoint, "--dial-timeout", "1s", "--command-timeout", "2s", "get",
       linearizable ? "--consistency=l" : "--consistency=s", key},
      5s);
}

std::map<std::string, lab::EtcdStatus> StatusByMember(const TestLab& lab) {
  std::map<std::string, lab::EtcdStatus> out;
  for (const auto& s : lab::QueryEtcd(lab.info())) out[s.member] = s;
  return out;
}

// Every member answers etcdctl, one leader they agree on, equal raft indexes.
bool Converged(const TestLab& lab) {
  std::set<uint64_t> leaders, indexes;
  for (const auto& s : lab::QueryEtcd(lab.info())) {
    if (!s.reachable) return false;
    leaders.insert(s.leader);
    indexes.insert(s.raft_index);
  }
  return leaders.size() == 1 && *leaders.begin() != 0 && indexes.size() == 1;
}

// Whether `m` reaches, within `limit`, the raft index the other members had committed when this
// was called: the signal that a member healed from a fault has caught up while a workload keeps
// writing. Equal indexes on all three members (Converged) need three etcdctl calls, run a few ms
// apart, to land between two commits, which a workload's ~200 commits/s make a matter of luck
// (the cause of the partition and pause tests' failures on loaded machines: every member
// healthy, indexes a few entries apart).
::testing::AssertionResult CatchesUp(const TestLab& lab, const lab::MemberInfo& m,
                                     std::chrono::seconds limit) {
  const auto healed_at = Clock::now();
  uint64_t target = 0;
  for (const auto& [name, st] : StatusByMember(lab)) {
    if (name != m.name && st.reachable) target = std::max(target, st.raft_index);
  }
  size_t polls = 0, all_equal = 0;
  std::string last_seen;
  bool caught_up = WaitFor(
      [&] {
        auto st = StatusByMember(lab);
        ++polls;
        std::set<uint64_t> indexes;
        last_seen.clear();
        for (const auto& [name, s] : st) {
          indexes.insert(s.reachable ? s.raft_index : 0);
          last_seen += name + "=" + (s.reachable ? std::to_string(s.raft_index) : s.error) + " ";
        }
        if (indexes.size() == 1) ++all_equal;
        return st[m.name].reachable && st[m.name].raft_index >= target;
      },
      limit);
  if (!caught_up) {
    return ::testing::AssertionFailure()
           << m.name << " did not reach raft index " << target << " in " << limit.count()
           << " s; last: " << last_seen << "\n"
           << m.name << "'s etcd log ends:\n"
           << Tail(m.dir + "/etcd.log");
  }
  std::cerr << m.name << " caught up with raft index " << target << " "
            << std::chrono::duration<double>(Clock::now() - healed_at).count()
            << " s after its fault was recovered (" << all_equal << " of " << polls
            << " polls saw one raft index on all members)\n";
  return ::testing::AssertionSuccess();
}

// With FAULTLINE_KEEP_HISTORY=DIR a test's workload history is saved there (DIR/NAME.jsonl), so
// a failing check can be read again with `faultline check history` after the lab is gone.
void KeepHistoryIfAsked(const History& h, const std::string& name) {
  const char* dir = std::getenv("FAULTLINE_KEEP_HISTORY");
  if (dir == nullptr || *dir == 0) return;
  std::ofstream out(std::string(dir) + "/" + name + ".jsonl");
  SaveJsonl(h, out);
  std::cerr << "history kept in " << dir << "/" << name << ".jsonl\n";
}

// A follower as an independent `etcdctl endpoint status` sees it: the first reachable member
// that is not the leader.
int PickFollower(const TestLab& lab) {
  auto st = lab::QueryEtcd(lab.info());
  for (size_t i = 0; i < st.size(); ++i) {
    if (st[i].reachable && !st[i].is_leader() && st[i].leader != 0) return int(i);
  }
  return -1;
}

// `faultline ... -o json inject ...` on member `member`'s agent; returns the fault id.
std::string Inject(const TestLab& lab, const std::string& member, std::vector<std::string> args) {
  std::vector<std::string> argv = {"--lab", lab.name(), "--target", member, "-o", "json"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = Cli(argv);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out, nullptr, false);
  if (!j.is_object()) return "";
  return j.value("id", "");
}

// Reverts whatever a test injected on a member's agent, also when the test failed halfway.
struct RecoverOnExit {
  const TestLab& lab;
  std::string member;
  ~RecoverOnExit() { Cli({"--lab", lab.name(), "--target", member, "recover", "--all"}); }
};

lab::LabOptions NoController() {
  lab::LabOptions o;
  o.no_controller = true;  // the checks and the CLI talk to etcd and the agents directly
  return o;
}

class LabVerify : public faultline::testing::SharedLabTest {
 protected:
  static void SetUpTestSuite() { StartLab(NoController()); }
  void SetUp() override {
    SharedLabTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // Each test starts from a healthy, converged lab (the partition test heals its fault).
    ASSERT_TRUE(WaitFor([] { return Converged(*lab_); }, 30s));
  }
};

// (a) A healthy lab passes every check, through the library and through the CLI run against
// `faultline lab endpoints`; the numbers agree with an independent etcdctl.
TEST_F(LabVerify, HealthyLabPassesEveryCheck) {
  EtcdClient client(lab_->endpoints());
  for (int i = 0; i < 25; ++i) Put(client, "/healthy/a/k" + std::to_string(i), "v");
  for (int i = 0; i < 10; ++i) Put(client, "/healthy/b/k" + std::to_string(i), "v");
  Put(client, "/healthy/b/big", std::string(200 * 1024, 'x'));
  ClusterCheckOptions o;
  o.prefixes = {"/healthy/a/", "/healthy/b/"};
  std::vector<CheckResult> rs = RunClusterChecks(client, o);
  std::cerr << RenderTable(rs);
  ASSERT_EQ(rs.size(), 9u);
  for (const auto& r : rs) {
    EXPECT_TRUE(r.passed) << r.name << ": " << r.summary << "\n" << r.evidence.dump(2);
  }
  // The members are the lab's, by name, each answering on its namespace's address.
  std::set<std::string> names;
  for (const auto& [ep, m] : Find(rs, "health").evidence["members"].items()) {
    names.insert(m["name"].get<std::string>());
  }
  EXPECT_EQ(names, (std::set<std::string>{"e1", "e2", "e3"}));
  EXPECT_EQ(Find(rs, "big-keys").evidence["largest"][0]["key"], "/healthy/b/big");
  EXPECT_EQ(Find(rs, "big-keys").evidence["largest"][0]["value_bytes"], 200 * 1024);
  // A lowered quota fails the db-size check and a big-key threshold below the big value fails
  // the inspection naming the key: both really compare.
  EXPECT_FALSE(CheckDbSize(client, 1024, 0.9).passed);
  o.big_value_bytes = 100 * 1024;
  auto inspect = InspectKeyspace(client, o);
  EXPECT_FALSE(inspect[0].passed);
  EXPECT_NE(inspect[0].summary.find("/healthy/b/big"), std::string::npos) << inspect[0].summary;

  auto eps = Cli({"lab", "endpoints", "--name", lab_->name()});
  ASSERT_EQ(eps.exit_code, 0) << eps.err;
  std::string csv = eps.out.substr(0, eps.out.find('\n'));
  EXPECT_EQ(csv, lab_->EndpointsCsv());
  auto check = Cli({"check", "etcd", "--endpoints", csv, "-o", "json", "--prefix", "/healthy/a/",
                    "--prefix", "/healthy/b/"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  json report = json::parse(check.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << check.out << check.err;
  EXPECT_TRUE(report["passed"].get<bool>()) << check.out;
  ASSERT_EQ(report["checks"].size(), 9u);
  for (const auto& c : report["checks"]) EXPECT_TRUE(c["passed"].get<bool>()) << c.dump(2);
  // Per-member numbers, checked against etcdctl's own count on each member.
  const json& counts = FindJson(report, "key-count")["evidence"]["counts"];
  for (const auto& m : lab_->info().members) {
    auto n = lab::RunCommand({kEtcdctl, "--endpoints", m.client_url, "get", "--consistency=s",
                              "--prefix", "/healthy/a/", "--keys-only", "-w", "json"});
    ASSERT_EQ(n.exit_code, 0) << n.err;
    EXPECT_EQ(json::parse(n.out).value("count", -1), 25) << m.name;
    EXPECT_EQ(counts["/healthy/a/"][HostPort(m)], 25) << counts.dump();
    EXPECT_EQ(counts["/healthy/b/"][HostPort(m)], 11) << counts.dump();
  }
  const json& hashes = FindJson(report, "hashkv")["evidence"]["members"];
  EXPECT_EQ(hashes.size(), 3u) << hashes.dump();
}

// (b) A workload with linearizable reads runs while a follower is cut from the other members by
// a net partition injected through its agent. From outside: the follower's raft index stops
// while the majority's advances, and its linearizable reads fail while the majority's succeed.
// After healing the history passes every history check and the cluster every cluster check.
TEST_F(LabVerify, WorkloadUnderFollowerPartitionIsLinearizableAndHeals) {
  const int follower = PickFollower(*lab_);
  ASSERT_GE(follower, 0);
  const lab::MemberInfo& f = lab_->info().members[size_t(follower)];
  std::vector<std::string> others;
  for (const auto& m : lab_->info().members) {
    if (m.name != f.name) others.push_back(m.address);
  }

  WorkloadOptions wo;
  wo.endpoints = lab_->endpoints();
  wo.clients = 6;  // pinned: two per member
  wo.keys = 5;
  wo.rate = 300;
  wo.op_timeout = 1000ms;
  wo.linearizable_reads = true;
  wo.seed = 8;
  Workload w(wo);
  w.Start();
  std::this_thread::sleep_for(1500ms);

  RecoverOnExit heal{*lab_, f.name};
  // Peer traffic only (port 2380, both ways, to/from the other members' addresses), as the
  // runner fills `to` for a peer partition: clients still reach the follower.
  std::string id =
      Inject(*lab_, f.name,
             {"inject", "net", "partition", "--peer", others[0] + "/32," + others[1] + "/32",
              "--direction", "both", "--protocol", "tcp", "--ports", "2380", "--duration", "60s"});
  ASSERT_FALSE(id.empty());
  // Let the follower fall behind, then watch the indexes over 3 s.
  std::this_thread::sleep_for(1500ms);
  auto before = StatusByMember(*lab_);
  std::this_thread::sleep_for(3s);
  auto after = StatusByMember(*lab_);
  ASSERT_TRUE(after[f.name].reachable) << after[f.name].error;  // clients still reach it
  EXPECT_EQ(after[f.name].raft_index, before[f.name].raft_index)
      << f.name << " kept applying while partitioned";
  uint64_t majority_progress = 0;
  std::string majority_endpoint;
  for (const auto& m : lab_->info().members) {
    if (m.name == f.name) continue;
    ASSERT_TRUE(after[m.name].reachable) << m.name << ": " << after[m.name].error;
    majority_progress = after[m.name].raft_index - before[m.name].raft_index;
    EXPECT_GT(majority_progress, 50u) << m.name << " did not advance";
    majority_endpoint = m.client_url;
  }
  std::cerr << "partitioned " << f.name << ": raft index " << before[f.name].raft_index << " -> "
            << after[f.name].raft_index << " in 3 s; majority advanced by " << majority_progress
            << "\n";
  auto on_follower = EtcdctlGet(f.client_url, "/partition/probe", true);
  EXPECT_NE(on_follower.exit_code, 0) << "linearizable read on the partitioned follower worked";
  auto on_majority = EtcdctlGet(majority_endpoint, "/partition/probe", true);
  EXPECT_EQ(on_majority.exit_code, 0) << on_majority.err;
  // A serializable read is local: the follower still answers from its stale state.
  EXPECT_EQ(EtcdctlGet(f.client_url, "/partition/probe", false).exit_code, 0);

  auto rec = Cli({"--lab", lab_->name(), "--target", f.name, "recover", id});
  ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  ASSERT_TRUE(CatchesUp(*lab_, f, 30s));
  // The follower serves linearizable reads again.
  EXPECT_TRUE(WaitFor(
      [&] { return EtcdctlGet(f.client_url, "/partition/probe", true).exit_code == 0; }, 15s));
  std::this_thread::sleep_for(1500ms);
  w.Stop();
  // Without traffic the members settle on one index: now equality is the signal.
  ASSERT_TRUE(WaitFor([] { return Converged(*lab_); }, 30s));

  const History& h = w.history();
  size_t ok = 0, follower_not_ok = 0, follower_reads_not_ok = 0;
  for (const Op& op : h.ops) {
    if (op.outcome == Outcome::kOk) ++ok;
    if (op.endpoint == HostPort(f) && op.outcome != Outcome::kOk) {
      ++follower_not_ok;
      if (op.type == OpType::kGet) ++follower_reads_not_ok;
    }
  }
  std::vector<CheckResult> hist = CheckHistory(h);
  std::cerr << h.ops.size() << " ops, " << ok << " ok, " << follower_not_ok << " not ok on "
            << f.name << " (" << follower_reads_not_ok << " linearizable reads), "
            << h.watch_events.size() << " watch events\n"
            << RenderTable(hist);
  EXPECT_GT(follower_reads_not_ok, 0u) << "the partition did not reach the workload's reads";
  EXPECT_GT(ok, 1000u);
  // The workload's reads are linearizable: the serializable-read check has nothing to judge.
  for (const auto& r : hist) {
    EXPECT_TRUE(r.passed || (r.no_evidence && r.name == "serializable-reads"))
        << r.name << ": " << r.summary << "\n"
        << r.evidence.dump(2);
  }
  EXPECT_TRUE(AllPassed(hist));
  EXPECT_EQ(Find(hist, "linearizability").evidence["verdict"], "linearizable");
  EXPECT_EQ(Find(hist, "watch").evidence["watchers"].size(), 3u);
  KeepHistoryIfAsked(h, "partition");
  // The recorded history round-trips through the saved format and still checks the same.
  std::stringstream saved;
  SaveJsonl(h, saved);
  History back = LoadJsonl(saved);
  EXPECT_EQ(back.ops.size(), h.ops.size());
  EXPECT_TRUE(CheckLinearizable(back).passed);
  // A tampered copy is caught, so the pass above means something: a read R returned value v,
  // then an acknowledged write W replaced it, then a read L started after W returned — make L
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
  EXPECT_GE(LatencyPerSecond(h).size(), 10u);

  EtcdClient client(lab_->endpoints());
  ClusterCheckOptions o;
  o.prefixes = {w.prefix()};
  std::vector<CheckResult> rs = RunClusterChecks(client, o);
  std::cerr << RenderTable(rs);
  for (const auto& r : rs) {
    EXPECT_TRUE(r.passed) << r.name << ": " << r.summary << "\n" << r.evidence.dump(2);
  }
}

// A follower's etcd paused (SIGSTOP) through its agent under the same workload: its clients'
// ops time out with unknown outcomes, which the checker must treat as may-or-may-not have
// happened; after SIGCONT the history still passes every check.
TEST_F(LabVerify, WorkloadWithPausedFollowerIsLinearizable) {
  const int follower = PickFollower(*lab_);
  ASSERT_GE(follower, 0);
  const lab::MemberInfo& f = lab_->info().members[size_t(follower)];
  WorkloadOptions wo;
  wo.endpoints = lab_->endpoints();
  wo.clients = 6;
  wo.keys = 5;
  wo.rate = 300;
  wo.op_timeout = 500ms;
  wo.seed = 42;
  Workload w(wo);
  w.Start();
  std::this_thread::sleep_for(1500ms);
  RecoverOnExit resume{*lab_, f.name};
  std::string id = Inject(*lab_, f.name,
                          {"inject", "process", "pause", "--managed", "etcd", "--duration", "60s"});
  ASSERT_FALSE(id.empty());
  // From outside: the process is stopped.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto p = faults::process::ReadProc(f.etcd_pid);
        return p && p->state == 'T';
      },
      2s));
  std::this_thread::sleep_for(3s);
  auto rec = Cli({"--lab", lab_->name(), "--target", f.name, "recover", id});
  ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  ASSERT_TRUE(CatchesUp(*lab_, f, 30s));
  std::this_thread::sleep_for(1500ms);
  w.Stop();
  // Without traffic the members settle on one index: now equality is the signal.
  ASSERT_TRUE(WaitFor([] { return Converged(*lab_); }, 30s));
  const History& h = w.history();
  size_t ok = 0, unknown_on_follower = 0;
  for (const Op& op : h.ops) {
    if (op.outcome == Outcome::kOk) ++ok;
    if (op.endpoint == HostPort(f) && op.outcome == Outcome::kUnknown) ++unknown_on_follower;
  }
  KeepHistoryIfAsked(h, "pause");
  std::vector<CheckResult> rs = CheckHistory(h);
  std::cerr << h.ops.size() << " ops, " << ok << " ok, " << unknown_on_follower
            << " unknown on the paused " << f.name << "\n"
            << RenderTable(rs);
  EXPECT_GT(unknown_on_follower, 0u);
  EXPECT_GT(ok, 500u);
  for (const auto& r : rs) {
    EXPECT_TRUE(r.passed || (r.no_evidence && r.name == "serializable-reads"))
        << r.name << ": " << r.summary << "\n"
        << r.evidence.dump(2);
  }
  EXPECT_EQ(Find(rs, "linearizability").evidence["verdict"], "linearizable");
}

// (d) Bad endpoints: a clear error naming the endpoint, with an exit code a script can tell
// from a failed check.
// The workload is usable alone from the CLI: it records a history that `check history` (and its
// own --check) accepts, read back from the file; bad input names the flag before anything runs.
TEST_F(LabVerify, WorkloadCommandRecordsAHistoryForCheckHistory) {
  faultline::testing::TempDir dir("faultline-workload");
  const std::string file = (dir.path() / "history.jsonl").string();
  auto run = Cli({"workload", "--endpoints", lab_->EndpointsCsv(), "--duration", "3s", "--clients",
                  "4", "--keys", "5", "--rate", "300", "--out", file, "--check"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("linearizability     pass"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find(" ok, "), std::string::npos) << run.err;
  auto check = Cli({"check", "history", file, "-o", "json"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  json j = json::parse(check.out, nullptr, false);
  ASSERT_TRUE(j.is_object() && j["checks"].is_array()) << check.out;
  bool linearizable = false;
  for (const auto& c : j["checks"]) {
    if (c.value("name", "") == "linearizability") linearizable = c.value("passed", false);
  }
  EXPECT_TRUE(linearizable) << check.out;

  auto bad = Cli({"workload", "--endpoints", lab_->EndpointsCsv(), "--duration", "0s"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--duration"), std::string::npos) << bad.err;
  auto unwritable = Cli({"workload", "--endpoints", lab_->EndpointsCsv(), "--duration", "1s",
                         "--out", "/nonexistent/dir/h.jsonl"});
  EXPECT_EQ(unwritable.exit_code, 2);
  EXPECT_NE(unwritable.err.find("--out"), std::string::npos) << unwritable.err;
}

TEST_F(LabVerify, BadEndpointsGiveAClearError) {
  const lab::MemberInfo& m = lab_->info().members[0];
  // A lab member's address on a port nothing listens on: connection refused from the namespace.
  std::string dead = m.address + ":2399";
  auto r = Cli({"check", "etcd", "--endpoints", "http://" + dead, "--timeout-ms", "1000"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(
      r.err.rfind("faultline: error: no etcd endpoint answered: etcd " + dead + ": Status: ", 0),
      0u)
      << r.err;
  // One bad endpoint among the lab's: the checks run, health fails naming the dead one.
  r = Cli({"check", "etcd", "--endpoints", lab_->EndpointsCsv() + "," + dead, "--timeout-ms",
           "1000", "--convergence-ms", "1000", "-o", "json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  json report = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << r.out << r.err;
  const json& health = FindJson(report, "health");
  EXPECT_FALSE(health["passed"].get<bool>());
  // The dead endpoint is named; on a loaded machine a live member can miss the 1 s too and be
  // listed beside it (seen at load 16: "not answering: e3, dead").
  const std::string summary = health["summary"].get<std::string>();
  EXPECT_EQ(summary.rfind("not answering: ", 0), 0u) << health.dump(2);
  EXPECT_NE(summary.find(dead), std::string::npos) << health.dump(2);
  // Malformed endpoints are usage errors naming the bad one; nothing is contacted.
  r = Cli({"check", "etcd", "--endpoints", lab_->info().members[1].address});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "faultline: error: endpoints: \"" + lab_->info().members[1].address +
                       "\" is not HOST:PORT (optionally with http:// or https://)\n");
  r = Cli({"check", "etcd", "--endpoints", m.address + ":70000"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("\"" + m.address + ":70000\""), std::string::npos) << r.err;
}

// (c) A member whose data was made to diverge, on the lab: its etcd is stopped through its
// agent, its data dir (on the agent's overlay) replaced by a restore, under its own member and
// cluster identity, of a snapshot that holds foreign keys; the agent starts it again, it
// rejoins and replays the lab's raft log on top of the foreign data. The foreign snapshot comes
// from a one-member etcd on loopback: a snapshot of the lab itself would replay the lab's own
// log over the same keys and end with equal key counts (only revisions and hashes would differ).
TEST(LabVerifyDiverged, DivergedMemberFailsHashRevisionAndKeyCountChecksByName) {
  if (::geteuid() != 0) GTEST_SKIP() << "the lab needs root";
  TestLab lab(NoController());
  {
    EtcdClient client(lab.endpoints());
    for (int i = 0; i < 20; ++i) Put(client, "/shared/k" + std::to_string(i), "v");
  }
  const int victim = PickFollower(lab);
  ASSERT_GE(victim, 0);
  const lab::MemberInfo& v = lab.info().members[size_t(victim)];
  const std::string victim_label = v.name + " (" + HostPort(v) + ")";

  std::filesystem::path snap = lab.root() / "foreign.db";
  {
    faultline::testing::EtcdCluster other(1);
    EtcdClient oc(other.endpoints());
    for (int i = 0; i < 7; ++i) Put(oc, "/foreign/k" + std::to_string(i), "x");
    auto save = lab::RunCommand(
        {kEtcdctl, "--endpoints", other.client_endpoint(0), "snapshot", "save", snap.string()},
        20s);
    ASSERT_EQ(save.exit_code, 0) << save.out << save.err;
  }

  // Stop the member's etcd through its agent (SIGTERM; started again only when recovered).
  std::vector<RecoverOnExit> restart;
  std::map<std::string, std::string> kill_ids;
  auto stop = [&](const lab::MemberInfo& m) {
    restart.emplace_back(lab, m.name);
    kill_ids[m.name] = Inject(lab, m.name,
                              {"inject", "process", "kill", "--managed", "etcd", "--signal", "TERM",
                               "--restart-after", "120s"});
    ASSERT_FALSE(kill_ids[m.name].empty());
    ASSERT_TRUE(
        WaitFor([&] { return !faults::process::SameProcess(m.etcd_pid, m.etcd_start_time); }, 20s))
        << m.name << "'s etcd still runs";
  };
  restart.reserve(3);
  stop(v);
  if (HasFatalFailure()) return;
  // While it is down, `check etcd` on the lab fails health and names it.
  auto down = Cli({"check", "etcd", "--endpoints", lab.EndpointsCsv(), "--timeout-ms", "1000",
                   "--convergence-ms", "1000", "-o", "json"});
  EXPECT_EQ(down.exit_code, 1) << down.out << down.err;
  json down_report = json::parse(down.out, nullptr, false);
  ASSERT_TRUE(down_report.is_object()) << down.out << down.err;
  EXPECT_EQ(FindJson(down_report, "health")["summary"].get<std::string>().rfind(
                "not answering: " + HostPort(v), 0),
            0u)
      << FindJson(down_report, "health").dump(2);
  // The others stop too: a leader that stayed up would remember the victim's old match index
  // and send it a commit index beyond its restored log, which etcd answers with a panic
  // ("tocommit(31) is out of range [lastIndex(3)]"). A fresh leader probes its log instead.
  for (const auto& m : lab.info().members) {
    if (m.name != v.name) stop(m);
    if (HasFatalFailure()) return;
  }

  // Restore under the member's identity (same name, peer URL, cluster and token as the lab gave
  // it), then swap the member/ directory inside the data dir: the data dir itself is the
  // overlay's mount point and stays.
  std::string cluster;
  for (const auto& m : lab.info().members) {
    cluster += (cluster.empty() ? "" : ",") + m.name + "=" + m.peer_url;
  }
  std::filesystem::path restored = lab.root() / "restored";
  auto restore = lab::RunCommand(
      {kEtcdctl, "snapshot", "restore", snap.string(), "--name", v.name, "--data-dir",
       restored.string(), "--initial-cluster", cluster, "--initial-cluster-token",
       "faultline-lab-" + lab.name(), "--initial-advertise-peer-urls", v.peer_url},
      20s);
  ASSERT_EQ(restore.exit_code, 0) << restore.out << restore.err;
  std::filesystem::path data = v.data_dir;
  ASSERT_TRUE(std::filesystem::exists(data / "member")) << data;
  std::filesystem::remove_all(data / "member");
  std::filesystem::copy(restored / "member", data / "member",
                        std::filesystem::copy_options::recursive);

  // Recovering the kill starts etcd again, and the agent answers once it is healthy: that needs
  // a quorum, so the three are recovered at once.
  std::vector<lab::CommandResult> recs(3);
  {
    std::vector<std::jthread> threads;
    for (size_t i = 0; i < 3; ++i) {
      threads.emplace_back([&, i] {
        const auto& m = lab.info().members[i];
        recs[i] = Cli({"--lab", lab.name(), "--target", m.name, "recover", kill_ids[m.name]});
      });
    }
  }
  for (const auto& r : recs) EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(WaitFor([&] { return Converged(lab); }, 40s))
      << "the restored member did not rejoin; its etcd log ends:\n"
      << Tail(v.dir + "/etcd.log") << "\nagent log:\n"
      << Tail(v.dir + "/agent.log");
  auto st = StatusByMember(lab);
  std::cerr << v.name << " rejoined: revision " << st[v.name].revision << " vs "
            << st[lab.info().members[size_t((victim + 1) % 3)].name].revision << "\n";

  EtcdClient client(lab.endpoints());
  ClusterCheckOptions o;
  o.prefixes = {"/shared/", "/foreign/"};
  std::vector<CheckResult> rs = RunClusterChecks(client, o);
  std::cerr << RenderTable(rs);
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
  for (const auto& m : lab.info().members) {
    // An independent etcdctl sees the same per-member difference.
    auto n = lab::RunCommand({kEtcdctl, "--endpoints", m.client_url, "get", "--consistency=s",
                              "--prefix", "/foreign/", "--keys-only", "-w", "json"});
    ASSERT_EQ(n.exit_code, 0) << n.err;
    int want = m.name == v.name ? 7 : 0;
    // etcdctl's JSON leaves out a zero count (proto3).
    EXPECT_EQ(json::parse(n.out).value("count", 0), want) << m.name;
    EXPECT_EQ(count.evidence["counts"]["/foreign/"][HostPort(m)], want) << m.name;
    EXPECT_EQ(count.evidence["counts"]["/shared/"][HostPort(m)], 20) << m.name;
  }

  // The CLI says the same, with exit code 1 (checks ran and failed).
  auto cli = Cli(
      {"check", "etcd", "--endpoints", lab.EndpointsCsv(), "-o", "json", "--prefix", "/foreign/"});
  EXPECT_EQ(cli.exit_code, 1) << cli.out << cli.err;
  json report = json::parse(cli.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << cli.out << cli.err;
  EXPECT_EQ(FindJson(report, "hashkv")["evidence"]["divergent"], json::array({victim_label}));
  EXPECT_EQ(FindJson(report, "key-count")["evidence"]["divergent"]["/foreign/"],
            json::array({victim_label}));
}

// etcd-io/etcd#18667 on etcd 3.4: a txn whose success branch puts and reads at a compacted
// revision, sent through e1, is applied on e2 and e3 but not on e1, so the members diverge.
// `revision` fails, and `hashkv` fails for that divergence, not because every member answers
// OUT_OF_RANGE for a hash at the compact revision; once later writes give the members a common
// revision after the compaction, the hashes there differ.
TEST(LabVerify18667, CompactedReadInATxnDivergesMembersAndHashKVShowsIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "the lab needs root";
  TestLab lab(NoController());
  EtcdClient client(lab.endpoints());
  for (int i = 1; i <= 20; ++i) Put(client, "k" + std::to_string(i), "v" + std::to_string(i));
  const int64_t R = client.Status(0).header().revision();
  client.Compact(0, R, true);
  // A healthy compacted cluster passes: every member at R = its compact revision.
  ASSERT_TRUE(WaitFor([&] { return Converged(lab); }, 20s));
  CheckResult before = CheckHashKV(client, 3s);
  EXPECT_TRUE(before.passed) << before.summary << before.evidence.dump(2);
  for (const auto& [ep, m] : before.evidence["members"].items()) {
    EXPECT_EQ(m["compact_revision"], R) << ep;
  }

  pb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key("k1");
  cmp->set_target(pb::Compare::VALUE);
  cmp->set_result(pb::Compare::EQUAL);
  cmp->set_value("v1");
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key("k2");
  put->set_value("foo");
  auto* get = txn.add_success()->mutable_request_range();
  get->set_key("k1");
  get->set_revision(R - 1);
  pb::TxnResponse resp;
  grpc::Status st = client.TryTxn(0, txn, &resp, 5000ms);
  std::cerr << "txn through e1: " << (st.ok() ? "ok" : st.error_message()) << "\n";
  // The members settle at one applied index, with different revisions.
  std::this_thread::sleep_for(2s);
  ASSERT_TRUE(WaitFor([&] { return Converged(lab); }, 20s));
  auto by = StatusByMember(lab);
  std::cerr << "revisions: e1 " << by["e1"].revision << ", e2 " << by["e2"].revision << ", e3 "
            << by["e3"].revision << " (compacted at " << R << ")\n";
  const lab::MemberInfo& e1 = lab.info().members[0];
  const std::string e1_label = e1.name + " (" + HostPort(e1) + ")";

  CheckResult rev = CheckRevisions(client);
  EXPECT_FALSE(rev.passed) << rev.summary;
  // Every member's revision is named, not only the odd one out (which need not be the wrong one).
  for (const lab::MemberInfo& m : lab.info().members) {
    const std::string named =
        m.name + " (" + HostPort(m) + ") " + std::to_string(by[m.name].revision);
    EXPECT_NE(rev.summary.find(named), std::string::npos) << named << " in " << rev.summary;
  }
  CheckResult hash = CheckHashKV(client, 2s);
  std::cerr << "hashkv: " << hash.summary << "\n";
  EXPECT_FALSE(hash.passed) << hash.summary;
  EXPECT_EQ(hash.summary.find("OUT_OF_RANGE"), std::string::npos) << hash.summary;
  EXPECT_NE(hash.summary.find("diverged"), std::string::npos) << hash.summary;
  EXPECT_EQ(hash.evidence["divergent"], json::array({e1_label})) << hash.evidence.dump(2);
  for (const auto& [ep, m] : hash.evidence["members"].items()) {
    EXPECT_EQ(m["compact_revision"], R) << ep;
  }

  // A later write moves every member on by one: e1 to R+1, the others to R+2. At R+1 each
  // member has a state after the compaction, and e1's is not the others'.
  Put(client, "k21", "v21");
  ASSERT_TRUE(WaitFor([&] { return Converged(lab); }, 20s));
  CheckResult later = CheckHashKV(client, 2s);
  std::cerr << "hashkv after one more write: " << later.summary << "\n";
  EXPECT_FALSE(later.passed);
  EXPECT_EQ(later.evidence["revision"], R + 1) << later.evidence.dump(2);
  EXPECT_NE(later.summary.find("hashes at revision " + std::to_string(R + 1) + " differ: "),
            std::string::npos)
      << later.summary;
  for (const lab::MemberInfo& m : lab.info().members) {
    EXPECT_NE(later.summary.find(m.name + " (" + HostPort(m) + ") "), std::string::npos)
        << m.name << " in " << later.summary;
  }
  EXPECT_EQ(later.evidence["divergent"], json::array({e1_label})) << later.evidence.dump(2);
  // The CLI fails both through the same library.
  auto cli = Cli({"check", "etcd", "--endpoints", lab.EndpointsCsv(), "-o", "json"});
  EXPECT_EQ(cli.exit_code, 1) << cli.out << cli.err;
  json report = json::parse(cli.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << cli.out;
  EXPECT_FALSE(FindJson(report, "revision")["passed"].get<bool>());
  EXPECT_FALSE(FindJson(report, "hashkv")["passed"].get<bool>());
  EXPECT_EQ(FindJson(report, "hashkv")["summary"].get<std::string>().find("OUT_OF_RANGE"),
            std::string::npos);
}

// Member liveness from the agents that supervise etcd: a kill a fault made is named as meant
// and passes; etcd killed by hand (outside any experiment) fails the check naming the member,
// and one that dies with a Go crash dump is quoted from its own output.
TEST(LabVerifyLiveness, EtcdDyingOutsideAnyFaultFailsNamingTheMember) {
  if (::geteuid() != 0) GTEST_SKIP() << "the lab needs root";
  TestLab lab(NoController());
  auto liveness = [&] {
    auto r = Cli({"check", "liveness", "--agents", lab.AgentsCsv(), "-o", "json"});
    json j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out << r.err;
    return std::make_pair(r.exit_code, j.is_object() ? FindJson(j, "liveness") : json());
  };
  auto [code, healthy] = liveness();
  EXPECT_EQ(code, 0) << healthy.dump(2);
  EXPECT_NE(healthy["summary"].get<std::string>().find("on 3 member(s)"), std::string::npos)
      << healthy.dump(2);

  // A kill through the agent (a fault), started again after 1 s: meant, not a finding.
  const lab::MemberInfo& e1 = lab.info().members[0];
  std::string id = Inject(
      lab, e1.name, {"inject", "process", "kill", "--managed", "etcd", "--restart-after", "1s"});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitFor([&] { return Converged(lab); }, 40s));
  auto [meant_code, meant] = liveness();
  EXPECT_EQ(meant_code, 0) << meant.dump(2);
  EXPECT_NE(meant["summary"].get<std::string>().find("e1 fault process/kill (KILL)"),
            std::string::npos)
      << meant.dump(2);

  // By hand: SIGKILL to e2's etcd, SIGQUIT to e3's (Go dumps its goroutines and exits 2).
  const lab::MemberInfo& e2 = lab.info().members[1];
  const lab::MemberInfo& e3 = lab.info().members[2];
  ASSERT_TRUE(faults::process::SameProcess(e2.etcd_pid, e2.etcd_start_time));
  ASSERT_TRUE(faults::process::SameProcess(e3.etcd_pid, e3.etcd_start_time));
  ASSERT_EQ(::kill(e2.etcd_pid, SIGKILL), 0);
  ASSERT_EQ(::kill(e3.etcd_pid, SIGQUIT), 0);
  json dead;
  // The agent records an exit first and adds what the process wrote once it has read its log,
  // so wait for e3's quoted lines too.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto [c, j] = liveness();
        dead = j;
        return c == 1 && j["evidence"]["unexpected_exits"].size() == 2 &&
               j["summary"].get<std::string>().find("SIGQUIT: quit") != std::string::npos;
      },
      20s))
      << dead.dump(2);
  std::cerr << dead["summary"].get<std::string>() << "\n";
  const std::string summary = dead["summary"].get<std::string>();
  EXPECT_NE(summary.find("etcd on e2 (pid " + std::to_string(e2.etcd_pid) +
                         ") killed by signal 9 (KILL)"),
            std::string::npos)
      << summary;
  EXPECT_NE(
      summary.find("etcd on e3 (pid " + std::to_string(e3.etcd_pid) + ") exited with status 2"),
      std::string::npos)
      << summary;
  EXPECT_NE(summary.find("SIGQUIT: quit"), std::string::npos) << summary;
  std::set<std::string> named;
  for (const auto& x : dead["evidence"]["unexpected_exits"]) named.insert(x["member"]);
  EXPECT_EQ(named, (std::set<std::string>{"e2", "e3"}));
  // e1's meant kill is still listed as meant, not as a finding.
  EXPECT_NE(summary.find("e1 fault process/kill (KILL)"), std::string::npos) << summary;
}

// The report a `run --report-dir D` wrote (D/<run id>/report.json); null if none.
json ReportIn(const std::filesystem::path& d) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(d, ec)) {
    std::ifstream in(e.path() / "report.json");
    if (in) return json::parse(in, nullptr, false);
  }
  return json();
}

// `faultline check liveness` over the lab's agents: its liveness result, null if it gave no JSON.
json LabLiveness(const TestLab& lab) {
  auto r = Cli({"check", "liveness", "--agents", lab.AgentsCsv(), "-o", "json"});
  json j = json::parse(r.out, nullptr, false);
  return j.is_object() ? FindJson(j, "liveness") : json();
}

// An experiment named `idle` with no workload and one wait step, checking health and convergence.
std::string IdleExperiment(const std::string& wait) {
  return R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: idle}
spec:
  seed: 7
  workload: {kind: none}
  steps:
    - wait: )" +
         wait + R"(
  checks: [health, convergence]
)";
}

// Liveness in experiment runs (`faultline run --lab`): the runner asks the run's agents at the
// end of every run, whatever the experiment lists. A run whose steps kill and restart etcd on
// purpose passes it (the exits are listed as meant); a run during which etcd is killed by hand
// fails it naming the member, even after the member is back and healthy for the other checks.
TEST(LabVerifyLiveness, RunsFailOnAnExitNobodyMeantButNotOnTheirOwnKills) {
  if (::geteuid() != 0) GTEST_SKIP() << "the lab needs root";
  TestLab lab(NoController());
  faultline::testing::TempDir dir("faultline-liveness-run");
  auto write = [&](const std::string& name, const std::string& yaml) {
    std::ofstream(dir.path() / name) << yaml;
    return (dir.path() / name).string();
  };
  auto report = [&](const std::string& sub) { return ReportIn(dir.path() / sub); };
  const std::string planned = write("planned.yaml", R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: planned-kills}
spec:
  seed: 7
  workload: {kind: none}
  steps:
    - fault: {process: {action: kill, target: {managed: etcd}, restartAfter: 1s}}
      target: {mode: one, matchLabels: {app: etcd}}
    - wait: 3s
    - fault: {process: {action: restart, target: {managed: etcd}, grace: 2s}}
      target: {mode: one, matchLabels: {app: etcd}}
    - wait: 3s
  checks: [health, convergence]
)");
  auto ok = Cli({"run", planned, "--lab", lab.name(), "--quiet", "--report-dir",
                 (dir.path() / "planned").string()},
                120s);
  json pr = report("planned");
  ASSERT_TRUE(pr.is_object()) << ok.out << ok.err;
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  const json& pl = FindJson(pr, "LIVENESS");
  EXPECT_TRUE(pl["passed"].get<bool>()) << pl.dump(2);
  // Both planned exits are there, each with who meant it.
  const std::string meant = pl["evidence"]["meant_exits"].dump();
  EXPECT_NE(meant.find("fault process/kill (KILL)"), std::string::npos) << pl.dump(2);
  EXPECT_NE(meant.find("agent restart"), std::string::npos) << pl.dump(2);
  std::ifstream html_in;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() / "planned")) {
    html_in.open(e.path() / "report.html");
  }
  std::stringstream html;
  html << html_in.rdbuf();
  EXPECT_NE(html.str().find("LIVENESS: process exits"), std::string::npos);
  EXPECT_NE(html.str().find("meant by fault process/kill (KILL)"), std::string::npos);

  // The same kind of run with nothing but a wait; e3's etcd is SIGKILLed from outside during it,
  // and started again through its agent once the agent saw it die.
  const std::string idle = write("idle.yaml", IdleExperiment("12s"));
  auto run = std::async(std::launch::async, [&] {
    return Cli({"run", idle, "--lab", lab.name(), "--quiet", "--report-dir",
                (dir.path() / "idle").string()},
               120s);
  });
  auto liveness = [&] { return LabLiveness(lab); };
  std::this_thread::sleep_for(3s);
  json before = liveness();
  ASSERT_TRUE(before.is_object());
  const int e3_pid = before["evidence"]["members"]["e3/etcd"]["pid"].get<int>();
  ASSERT_GT(e3_pid, 0) << before.dump(2);
  ASSERT_EQ(::kill(e3_pid, SIGKILL), 0);
  // Started again only once its agent recorded the exit (a restart of a live process would be
  // the agent's own, meant).
  ASSERT_TRUE(WaitFor(
      [&] {
        json j = liveness();
        return j.is_object() && j["evidence"]["members"]["e3/etcd"]["pid"] == 0;
      },
      10s));
  std::string id =
      Inject(lab, "e3", {"inject", "process", "restart", "--managed", "etcd", "--grace", "1s"});
  EXPECT_FALSE(id.empty());
  auto failed = run.get();
  json ir = report("idle");
  ASSERT_TRUE(ir.is_object()) << failed.out << failed.err;
  EXPECT_NE(failed.exit_code, 0) << failed.out;
  EXPECT_EQ(ir["state"], "failed");
  EXPECT_TRUE(FindJson(ir, "HEALTH")["passed"].get<bool>()) << ir["checks"].dump(2);
  const json& il = FindJson(ir, "LIVENESS");
  EXPECT_FALSE(il["passed"].get<bool>());
  const std::string summary = il["summary"].get<std::string>();
  std::cerr << summary << "\n";
  EXPECT_NE(
      summary.find("etcd on e3 (pid " + std::to_string(e3_pid) + ") killed by signal 9 (KILL)"),
      std::string::npos)
      << summary;
  ASSERT_EQ(il["evidence"]["unexpected_exits"].size(), 1u) << il.dump(2);
  EXPECT_EQ(il["evidence"]["unexpected_exits"][0]["member"], "e3");
  // The planned run's exits came before this run: not judged again.
  EXPECT_EQ(il["evidence"]["meant_exits"].size(), 0u) << il.dump(2);
}

// A member whose etcd dies during the run and that nothing restarts (the lab's agents supervise
// with restart policy "never") cannot make the cluster healthy: the post-run health wait says so
// after two probes instead of waiting out its 30 s, naming the member and what it last did.
TEST(LabVerifyLiveness, HealthWaitEndsWhenAMemberIsDownForGood) {
  if (::geteuid() != 0) GTEST_SKIP() << "the lab needs root";
  TestLab lab(NoController());
  faultline::testing::TempDir dir("faultline-down-for-good");
  const std::string file = (dir.path() / "idle.yaml").string();
  std::ofstream(file) << IdleExperiment("4s");
  auto run = std::async(std::launch::async, [&] {
    return Cli(
        {"run", file, "--lab", lab.name(), "--quiet", "--report-dir", (dir.path() / "r").string()},
        120s);
  });
  std::this_thread::sleep_for(1s);
  json live = LabLiveness(lab);
  ASSERT_TRUE(live.is_object());
  const int e3_pid = live["evidence"]["members"]["e3/etcd"]["pid"].get<int>();
  ASSERT_GT(e3_pid, 0);
  ASSERT_EQ(::kill(e3_pid, SIGKILL), 0);
  auto failed = run.get();
  EXPECT_NE(failed.exit_code, 0) << failed.out;
  json report = ReportIn(dir.path() / "r");
  ASSERT_TRUE(report.is_object()) << failed.out << failed.err;
  const json& health = FindJson(report, "HEALTH");
  EXPECT_FALSE(health["passed"].get<bool>());
  const std::string summary = health["summary"].get<std::string>();
  EXPECT_NE(summary.find("cannot become so"), std::string::npos) << summary;
  EXPECT_NE(summary.find("e3 (last: exit: killed by signal 9 (KILL))"), std::string::npos)
      << summary;
  ASSERT_EQ(health["evidence"]["down_for_good"].size(), 1u) << health.dump(2);
}

// Member replacement (process/rejoin) and IO crashes in experiment runs, one lab for both.
class LabMembership : public faultline::testing::SharedLabTest {
 protected:
  static void SetUpTestSuite() { StartLab(NoController()); }
  // `run --report-dir` into a fresh directory; the run's report.json, or null.
  json Run(const std::string& name, const std::string& yaml, lab::CommandResult* out) {
    const auto file = dir_.path() / (name + ".yaml");
    std::ofstream(file) << yaml;
    const auto reports = dir_.path() / name;
    *out = Cli(
        {"run", file.string(), "--lab", lab_->name(), "--quiet", "--report-dir", reports.string()},
        180s);
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(reports, ec)) {
      std::ifstream in(e.path() / "report.json");
      if (in) return json::parse(in, nullptr, false);
    }
    return json();
  }
  // Member name -> id, as an independent etcdctl lists them.
  std::map<std::string, uint64_t> MemberIds() {
    auto r = lab::RunCommand({kEtcdctl, "--endpoints", lab_->info().members[0].client_url, "member",
                              "list", "-w", "json"},
                             10s);
    std::map<std::string, uint64_t> out;
    json j = json::parse(r.out, nullptr, false);
    if (!j.is_object()) return out;
    for (const auto& m : j.value("members", json::array())) {
      out[m.value("name", std::string())] = m.value("ID", uint64_t{0});
    }
    return out;
  }
  static std::string Cmdline(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(s.begin(), s.end(), '\0', ' ');
    return s;
  }
  faultline::testing::TempDir dir_{"faultline-membership"};
};

// A follower replaced the way an SRE replaces a failed member: afterwards the cluster lists it
// under a new id (etcdctl), its data dir lost what was there before, it serves the data written
// before the replacement from its own store (a serializable read through it alone), its etcd
// runs as a member of an existing cluster, and every check of the run passes, liveness with the
// stop listed as meant.
TEST_F(LabMembership, ReplacedMemberComesBackEmptyUnderANewIdAndServesTheData) {
  const lab::MemberInfo& e2 = lab_->info().members[1];
  auto before = MemberIds();
  ASSERT_EQ(before.size(), 3u);
  EtcdClient client(lab_->endpoints());
  Put(client, "/rejoin/before", "kept");
  const std::string marker = e2.data_dir + "/faultline-rejoin-marker";
  std::ofstream(marker) << "here before";
  ASSERT_TRUE(std::filesystem::exists(marker));

  lab::CommandResult cli;
  json report = Run("rejoin", R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: rejoin-e2}
spec:
  seed: 5
  workload: {kind: kv, clients: 4, rate: 200, keys: 50, warmup: 2s, cooldown: 3s}
  steps:
    - name: replace-e2
      target: {members: [e2], matchLabels: {app: etcd}}
      duration: 1s
      fault: {process: {action: rejoin, target: {managed: etcd}, grace: 5s}}
    - wait: 3s
  checks: [health, convergence, hashkv, revisions, lost-writes, linearizability]
)",
                    &cli);
  ASSERT_TRUE(report.is_object()) << cli.out << cli.err;
  EXPECT_EQ(cli.exit_code, 0) << cli.out << cli.err;
  for (const auto& c : report["checks"]) {
    EXPECT_TRUE(c["passed"].get<bool>()) << c.dump(2);
  }
  EXPECT_NE(FindJson(report, "LIVENESS")["evidence"]["meant_exits"].dump().find("agent stop"),
            std::string::npos);
  std::string replaced;
  for (const auto& e : report["events"]) {
    if (e["kind"] == "member.replaced") replaced = e["message"].get<std::string>();
  }
  EXPECT_NE(replaced.find(e2.peer_url), std::string::npos) << report["events"].dump(2);

  auto after = MemberIds();
  ASSERT_EQ(after.size(), 3u);
  EXPECT_NE(after["e2"], before["e2"]);
  EXPECT_NE(after["e2"], 0u);
  EXPECT_EQ(after["e1"], before["e1"]);
  EXPECT_EQ(after["e3"], before["e3"]);
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the data dir was not emptied";
  auto got = EtcdctlGet(e2.client_url, "/rejoin/before", false);
  EXPECT_NE(got.out.find("kept"), std::string::npos) << got.out << got.err;
  std::ifstream state(e2.dir + "/agent/managed/etcd.json");
  json st = json::parse(state, nullptr, false);
  ASSERT_TRUE(st.is_object());
  EXPECT_NE(Cmdline(st.value("pid", 0)).find("--initial-cluster-state=existing"),
            std::string::npos);
}

// A crash an IO rule runs SIGKILLs etcd from the overlay process; that exit is the fault's, so
// liveness lists it as meant and passes, with the member restarted by the crash.
TEST_F(LabMembership, AnIoCrashIsAMeantExitNotEtcdsOwn) {
  lab::CommandResult cli;
  json report = Run("crash", R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: crash-e3}
spec:
  seed: 5
  workload: {kind: kv, clients: 4, rate: 200, keys: 50, warmup: 2s, cooldown: 2s}
  steps:
    - fault: {io: {action: crash, mount: "${label:data-dir}", crash: {restart: etcd}}}
      target: {members: [e3], matchLabels: {app: etcd}}
    - wait: 3s
  checks: [health, convergence, lost-writes]
)",
                    &cli);
  ASSERT_TRUE(report.is_object()) << cli.out << cli.err;
  EXPECT_EQ(cli.exit_code, 0) << cli.out << cli.err;
  const json& live = FindJson(report, "LIVENESS");
  EXPECT_TRUE(live["passed"].get<bool>()) << live.dump(2);
  EXPECT_NE(live["evidence"]["meant_exits"].dump().find("fault io/crash crash (KILL)"),
            std::string::npos)
      << live.dump(2);
}

}  // namespace
}  // namespace faultline::verify
