// The agent's pool of IFB devices (faults/net/ifb_pool.h), inside network namespaces the test
// creates: a pooled IFB is handed to the next fault with nothing of the previous one left (seen
// from outside with `tc -s -j` run in the namespace), idle devices beyond the pool's size are
// deleted, a live owner's devices survive a sweep and a crashed owner's do not, and a real
// faultline-agent fills its pool at start, lends it to its faults, empties it at stop, and sweeps
// a SIGKILLed one's.
#include "faults/net/ifb_pool.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "faults/core/duration.h"
#include "faults/net/net_faults.h"
#include "faults/net/probe.h"
#include "faults/net/tc.h"
#include "faults/process/proc.h"
#include "faults/sys/netns.h"
#include "net_lab.h"
#include "net_lab_fixture.h"
#include "tests/support/subprocess.h"

namespace faultline::faults::net {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using v1::NetFault;
using namespace testing;
using faultline::testing::RunCommand;
using faultline::testing::WaitFor;

// Egress bandwidth limit on the UDP echo probes a -> b: tbf at the root of the (pooled) IFB.
v1::FaultSpec Bandwidth(const std::string& rate) {
  v1::FaultSpec spec;
  NetFault* f = spec.mutable_net();
  f->set_action(NetFault::BANDWIDTH);
  f->set_rate(rate);
  f->add_to(std::string(kAddrB) + "/32");
  f->set_protocol(NetFault::UDP);
  f->add_ports(std::to_string(kEchoPort));
  f->set_direction(NetFault::EGRESS);
  f->set_device("va");
  return spec;
}

// Links named flbpool* in the calling thread's namespace.
std::vector<std::string> PoolLinks(Rtnl& nl) {
  std::vector<std::string> out;
  for (auto& [index, name] : nl.Links())
    if (name.starts_with(kIfbPoolPrefix)) out.push_back(name);
  return out;
}

std::string OwnAlias(pid_t pid) {
  auto info = process::ReadProc(pid);
  return PoolOwnerAlias(pid, info ? info->start_time : 0);
}

class IfbPoolTest : public NetLabTest {
 protected:
  void SetUp() override {
    NetLabTest::SetUp();
    if (IsSkipped()) return;
    opts_.exempt_ports = {kExemptPort};
    opts_.capabilities = *caps_;
  }
  void TearDown() override {
    registry_.reset();
    pool_.reset();
    NetLabTest::TearDown();
  }

  void MakePool(int idle_max) {
    pool_ = std::make_unique<IfbPool>(idle_max);
    pool_->Fill();
    registry_ = std::make_unique<Registry>();
    RegisterNetFaults(*registry_, opts_, pool_.get());
  }
  std::unique_ptr<Fault> Apply(const v1::FaultSpec& spec) {
    auto f = registry_->Create(spec, ctx_);
    f->Prepare();
    f->Apply();
    return f;
  }
  // `tc -s -j ARGS` run in namespace a by nsenter: what an operator would see.
  json Tc(const std::string& args) {
    std::vector<std::string> argv = {
        "nsenter", "--net=/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(lab_->a()),
        "tc", "-s", "-j"};
    for (size_t at = 0, next; at < args.size(); at = next + 1) {
      next = args.find(' ', at);
      if (next == std::string::npos) next = args.size();
      argv.push_back(args.substr(at, next - at));
    }
    std::string out;
    EXPECT_EQ(RunCommand(argv, &out), 0) << out;
    auto j = json::parse(out, nullptr, false);
    return j.is_discarded() ? json::array() : j;
  }
  int Outside(const std::string& cmd) {
    return system(("nsenter --net=/proc/" + std::to_string(getpid()) + "/fd/" +
                   std::to_string(lab_->a()) + " " + cmd + " >/dev/null 2>&1")
                      .c_str());
  }

  NetOptions opts_;
  std::unique_ptr<IfbPool> pool_;
  std::unique_ptr<Registry> registry_;
  FaultContext ctx_;
};

TEST_F(IfbPoolTest, NextFaultSeesNothingOfThePreviousUsersQdiscsOrFilters) {
  MakePool(1);
  ASSERT_EQ(pool_->Idle().size(), 1u);
  const std::string ifb = pool_->Idle()[0];
  Rtnl nl;
  EXPECT_EQ(LinkAlias(nl, ifb), OwnAlias(getpid()));

  // Fault A: tbf 1mbit, traffic through it, and (as a careless user of the device would) a
  // clsact with a filter put on the IFB from outside.
  auto a = Apply(Bandwidth("1mbit"));
  EXPECT_NE(a->Describe().find(ifb), std::string::npos) << a->Describe();
  EXPECT_EQ(EchoesOf(100), 100);
  json qa = Tc("qdisc show dev " + ifb);
  ASSERT_EQ(qa.size(), 1u) << qa.dump();
  EXPECT_EQ(qa[0]["kind"], "tbf");
  EXPECT_EQ(qa[0]["options"]["rate"], 125000);
  EXPECT_GE(qa[0]["packets"].get<int64_t>(), 100);
  ASSERT_EQ(Outside("tc qdisc add dev " + ifb + " clsact"), 0);
  ASSERT_EQ(Outside("tc filter add dev " + ifb +
                    " ingress prio 7 protocol ip u32 match u32 0 0 classid 1:1"),
            0);
  ASSERT_FALSE(Tc("filter show dev " + ifb + " ingress").empty());
  a->Revert();

  // Idle: down, no qdisc at all (a down IFB without a root shows none), no filters.
  EXPECT_EQ(pool_->Idle(), std::vector<std::string>{ifb});
  EXPECT_EQ(pool_->InUse(), 0u);
  EXPECT_EQ(Tc("qdisc show dev " + ifb), json::array()) << Tc("qdisc show dev " + ifb).dump();
  EXPECT_EQ(Tc("filter show dev " + ifb + " ingress"), json::array());
  EXPECT_EQ(Tc("filter show dev va egress"), json::array());
  json link = json::parse(
      [&] {
        std::string out;
        RunCommand({"nsenter",
                    "--net=/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(lab_->a()),
                    "ip", "-j", "link", "show", ifb},
                   &out);
        return out;
      }(),
      nullptr, false);
  ASSERT_TRUE(link.is_array() && link.size() == 1) << link.dump();
  EXPECT_EQ(link[0]["operstate"], "DOWN");

  // Fault B on the same device: only B's tbf, counting from zero.
  auto b = Apply(Bandwidth("10mbit"));
  EXPECT_NE(b->Describe().find(ifb), std::string::npos) << b->Describe();
  json qb = Tc("qdisc show dev " + ifb);
  ASSERT_EQ(qb.size(), 1u) << qb.dump();
  EXPECT_EQ(qb[0]["kind"], "tbf");
  EXPECT_EQ(qb[0]["options"]["rate"], 1250000);
  EXPECT_EQ(qb[0]["packets"], 0);
  EXPECT_EQ(qb[0]["bytes"], 0);
  EXPECT_EQ(Tc("filter show dev " + ifb + " ingress"), json::array());
  EXPECT_EQ(b->Observe()["qdisc_packets"], 0);
  EXPECT_EQ(EchoesOf(20), 20);
  const int64_t seen = Tc("qdisc show dev " + ifb)[0]["packets"].get<int64_t>();
  EXPECT_GE(seen, 20);
  EXPECT_LT(seen, 100);  // none of A's 100
  b->Revert();
  EXPECT_EQ(pool_->Idle(), std::vector<std::string>{ifb});
  EXPECT_EQ(EchoesOf(20), 20);
}

TEST_F(IfbPoolTest, BeyondItsSizeThePoolCreatesAndThenDeletes) {
  MakePool(1);
  auto a = Apply(Bandwidth("1mbit"));
  auto b = Apply(Bandwidth("2mbit"));  // no idle device left: a new one
  Rtnl nl;
  EXPECT_EQ(PoolLinks(nl).size(), 2u);
  EXPECT_EQ(pool_->InUse(), 2u);
  for (const auto& name : PoolLinks(nl)) EXPECT_EQ(LinkAlias(nl, name), OwnAlias(getpid()));
  a->Revert();
  b->Revert();  // the pool holds one idle device already: this one is deleted
  EXPECT_EQ(PoolLinks(nl).size(), 1u);
  EXPECT_EQ(pool_->Idle().size(), 1u);
  EXPECT_EQ(pool_->InUse(), 0u);
  registry_.reset();
  pool_.reset();  // the agent stops
  EXPECT_TRUE(PoolLinks(nl).empty());
}

TEST_F(IfbPoolTest, SweepLeavesALiveOwnersDevicesAndRemovesACrashedOnes) {
  MakePool(2);
  auto in_use = Apply(Bandwidth("1mbit"));
  // A second owner in this namespace that dies without cleaning up (SIGKILL): one idle device
  // and one in use by a fault with its redirect filters on va.
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipefd[0]);
    try {
      IfbPool other(2);
      other.Fill();
      Registry reg;
      RegisterNetFaults(reg, opts_, &other);
      auto f = reg.Create(Bandwidth("5mbit"), {});
      f->Prepare();
      f->Apply();
      (void)!write(pipefd[1], "k", 1);
      pause();  // killed here, with the pool and the fault still in scope: nothing cleans up
    } catch (...) {
    }
    _exit(1);
  }
  close(pipefd[1]);
  char c = 0;
  ASSERT_EQ(read(pipefd[0], &c, 1), 1) << "the second owner did not get its fault applied";
  close(pipefd[0]);
  Rtnl nl;
  const std::string theirs = OwnAlias(child);
  int theirs_before = 0;
  for (const auto& name : PoolLinks(nl)) theirs_before += LinkAlias(nl, name) == theirs;
  EXPECT_EQ(theirs_before, 2);  // one idle, one in use
  // While it lives the sweep leaves its devices (and ours) alone.
  for (const auto& d : registry_->Find("net")->Sweep(ctx_))
    EXPECT_FALSE(d.starts_with("deleted IFB")) << d;
  EXPECT_EQ(PoolLinks(nl).size(), 4u);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(OwnerAlive(theirs));
  auto done = registry_->Find("net")->Sweep(ctx_);
  int deleted = 0;
  for (const auto& d : done) deleted += d.starts_with("deleted IFB flbpool");
  EXPECT_EQ(deleted, 2);
  for (const auto& name : PoolLinks(nl)) EXPECT_EQ(LinkAlias(nl, name), OwnAlias(getpid()));
  EXPECT_EQ(PoolLinks(nl).size(), 2u);  // ours: one idle, one in use
  EXPECT_EQ(pool_->Idle().size(), 1u);
  // The sweep removed every redirect on va, ours too (it cannot tell whose they are): our
  // fault's revert copes and its device goes back to the pool.
  in_use->Revert();
  EXPECT_EQ(pool_->Idle().size(), 2u);
  EXPECT_EQ(EchoesOf(20), 20);
}

TEST_F(IfbPoolTest, RestoredFaultOfADeadAgentDeletesItsPooledIfb) {
  MakePool(1);
  auto f = Apply(Bandwidth("1mbit"));
  const std::string state = f->State();
  const std::string ifb = json::parse(state).value("ifb", "");
  ASSERT_TRUE(ifb.starts_with(kIfbPoolPrefix)) << state;
  // The next agent (a new pool, which never lent this device) reverts from the journal.
  IfbPool next(1);
  Registry reg;
  RegisterNetFaults(reg, opts_, &next);
  auto restored = reg.Find("net")->Restore(Bandwidth("1mbit"), state, ctx_);
  restored->Revert();
  Rtnl nl;
  EXPECT_EQ(nl.IfIndex(ifb), 0);
  EXPECT_EQ(Tc("filter show dev va egress"), json::array());
  EXPECT_TRUE(next.Idle().empty());
  f.reset();  // dropped unreverted, as by the dead agent: its pool never sees the device again
}

// A real agent in a named namespace this test creates: the pool is filled after start, emptied
// by SIGTERM, and a SIGKILLed agent's devices are swept by the next agent.
TEST(IfbPoolAgent, FilledAtStartEmptiedAtStopSweptAfterACrash) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  faultline::testing::TempDir dir("faultline-ifbpool");
  auto ns = sys::NetNs::Create("fl-ifbpool-" + std::to_string(getpid()));
  Rtnl nl(ns.path());
  auto start = [&](const std::string& log) {
    return std::make_unique<faultline::testing::Subprocess>(
        std::vector<std::string>{"ip", "netns", "exec", ns.name(),
                                 faultline::testing::Binary("agent/faultline-agent"), "--listen",
                                 "unix://" + (dir.path() / "agent.sock").string(), "--state-dir",
                                 (dir.path() / "state").string(), "--ifb-pool", "3"},
        (dir.path() / log).string());
  };
  auto owned_by = [&](pid_t pid) {
    int n = 0;
    for (const auto& name : PoolLinks(nl)) n += LinkAlias(nl, name) == OwnAlias(pid);
    return n;
  };
  auto first = start("first.log");
  ASSERT_TRUE(WaitFor([&] { return owned_by(first->pid()) == 3; }, 60s))
      << PoolLinks(nl).size() << " pooled IFBs";
  const auto crashed = PoolLinks(nl);
  first->Stop(SIGKILL);
  EXPECT_EQ(PoolLinks(nl), crashed);  // a crash leaves them

  auto second = start("second.log");
  ASSERT_TRUE(WaitFor([&] { return owned_by(second->pid()) == 3; }, 60s));
  EXPECT_EQ(PoolLinks(nl).size(), 3u);  // the crashed agent's three were swept
  std::ifstream in(dir.path() / "second.log");
  const std::string log((std::istreambuf_iterator<char>(in)), {});
  for (const auto& name : crashed)
    EXPECT_NE(log.find("deleted IFB " + name), std::string::npos) << log;

  // The agent's tc-backend faults take their IFB from its pool and give it back clean.
  auto stub = v1::Agent::NewStub(grpc::CreateChannel(
      "unix://" + (dir.path() / "agent.sock").string(), grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 200ms);
        v1::CapabilitiesResponse resp;
        return stub->Capabilities(&ctx, {}, &resp).ok();
      },
      30s));
  v1::InjectRequest req;
  NetFault* nf = req.mutable_spec()->mutable_net();
  nf->set_action(NetFault::BANDWIDTH);
  nf->set_rate("1mbit");
  nf->set_backend(NetFault::NETEM);
  nf->set_device("lo");
  nf->add_to("127.0.0.2/32");
  v1::InjectResponse injected;
  {
    grpc::ClientContext ctx;
    auto st = stub->Inject(&ctx, req, &injected);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  auto with_qdisc = [&] {
    std::vector<std::string> out;
    for (const auto& name : PoolLinks(nl))
      if (!QdiscKinds(nl, nl.IfIndex(name)).empty()) out.push_back(name);
    return out;
  };
  const auto busy = with_qdisc();
  ASSERT_EQ(busy.size(), 1u);
  EXPECT_EQ(QdiscKinds(nl, nl.IfIndex(busy[0])), std::vector<std::string>{"tbf"});
  {
    grpc::ClientContext ctx;
    v1::RecoverRequest rr;
    rr.set_all(true);
    v1::RecoverResponse resp;
    ASSERT_TRUE(stub->Recover(&ctx, rr, &resp).ok());
  }
  EXPECT_TRUE(with_qdisc().empty());
  EXPECT_EQ(owned_by(second->pid()), 3);  // kept, not deleted
  const int status = second->Stop(SIGTERM, 30s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(PoolLinks(nl).empty());
}

}  // namespace
}  // namespace faultline::faults::net
