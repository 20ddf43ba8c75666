// Controller HA (issue 9): replicas share a state etcd (a single etcd on loopback, not the
// cluster under test) and elect one active controller on an etcd lease. Everything is measured
// from outside: the election key and the stored documents with etcdctl, the fault by the paused
// etcd's /proc/PID/stat state.
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "controller/state/etcd_election.h"
#include "controller/state/etcd_store.h"
#include "faultline/v1/controller.grpc.pb.h"
#include "faults/process/proc.h"
#include "tests/integration/controller/cluster_fixture.h"
#include "tests/support/certs.h"

namespace faultline::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double Secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string Hostname() {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  return host;
}

// The state etcd seen through etcdctl: an independent client, not the controller's own code.
class StateEtcd {
 public:
  StateEtcd() : etcd_(1, /*with_agents=*/false), prefix_("/ha-test-" + std::to_string(getpid())) {}
  std::string url() const {
    std::string ep = etcd_.endpoints()[0];
    return "etcd://" + ep.substr(ep.find("//") + 2) + prefix_;
  }
  const std::string& prefix() const { return prefix_; }
  std::vector<std::string> endpoints() const { return etcd_.endpoints(); }
  pid_t pid() const { return etcd_.etcd_pid(0); }
  std::string Ctl(std::vector<std::string> args) const {
    args.insert(args.begin(),
                {"etcdctl", "--endpoints=" + etcd_.EndpointsCsv(), "--command-timeout=2s"});
    std::string out;
    RunCommand(args, &out);
    return out;
  }
  // The election key's holder id ("" when absent).
  std::string Leader() const {
    auto j = nlohmann::json::parse(Ctl({"get", prefix_ + "/leader", "--print-value-only"}), nullptr,
                                   false);
    return j.is_object() ? j.value("id", "") : "";
  }
  // Every stored document of a kind (values are one-line JSON).
  std::vector<nlohmann::json> Docs(const std::string& kind) const {
    std::vector<nlohmann::json> out;
    std::istringstream in(
        Ctl({"get", "--prefix", prefix_ + "/" + kind + "/", "--print-value-only"}));
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object()) out.push_back(j);
    }
    return out;
  }

 private:
  EtcdCluster etcd_;
  std::string prefix_;
};

struct StoredRun {
  v1::Run run;
  std::string schedule_run_id, started_by;
};

class Ha : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (agents signal etcd)";
    cluster_ = std::make_unique<EtcdCluster>();
    state_ = std::make_unique<StateEtcd>();
  }

  struct Replica {
    std::string name, socket, id;
    std::unique_ptr<Subprocess> proc;
    std::unique_ptr<v1::Controller::Stub> stub;
  };

  // A controller replica on the shared state etcd: election lease 2 s (etcd's shortest), fault
  // lease 20 s so that what ends a fault early is a takeover's recovery, not the lease.
  Replica StartReplica(const std::string& name, const std::string& election_ttl = "2s",
                       bool static_agents = true, const std::string& heartbeat = "1s") {
    Replica r;
    r.name = name;
    r.socket = (cluster_->dir() / (name + ".sock")).string();
    std::vector<std::string> argv = {Binary("controller/faultline-controller"),
                                     "--listen",
                                     "unix://" + r.socket,
                                     "--state",
                                     state_->url(),
                                     "--election-ttl",
                                     election_ttl,
                                     "--etcd-endpoints",
                                     cluster_->EndpointsCsv(),
                                     "--lease",
                                     "20s",
                                     "--heartbeat-interval",
                                     heartbeat};
    if (static_agents) argv.insert(argv.end(), {"--agents", cluster_->AgentsCsv()});
    r.proc = std::make_unique<Subprocess>(argv, (cluster_->dir() / (name + ".log")).string());
    r.id = Hostname() + "-" + std::to_string(r.proc->pid());
    // A fresh channel per probe: one that failed before the socket existed backs off for
    // seconds before it tries again.
    auto connect = [&] {
      r.stub = v1::Controller::NewStub(
          grpc::CreateChannel("unix://" + r.socket, grpc::InsecureChannelCredentials()));
    };
    EXPECT_TRUE(WaitFor(
        [&] {
          connect();
          return !Role(r).empty();
        },
        10s))
        << Log(name);
    return r;
  }
  std::string Role(const Replica& r) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    v1::ControllerStatus st;
    return r.stub->GetStatus(&ctx, {}, &st).ok() ? st.role() : "";
  }
  std::string Log(const std::string& name) {
    std::ifstream in(cluster_->dir() / (name + ".log"));
    return name + ".log:\n" +
           std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  std::string Logs() { return Log("a") + Log("b") + Log("c") + Log("a2"); }
  int StoppedMembers() {
    int n = 0;
    for (int i = 0; i < cluster_->size(); ++i) n += cluster_->EtcdState(i) == 'T';
    return n;
  }
  grpc::Status Submit(Replica& r, const std::string& yaml, bool run_now,
                      std::string* run_id = nullptr) {
    v1::SubmitExperimentRequest req;
    req.set_yaml(yaml);
    req.set_run_now(run_now);
    v1::SubmitExperimentResponse resp;
    grpc::ClientContext ctx;
    auto st = r.stub->SubmitExperiment(&ctx, req, &resp);
    if (run_id && resp.run_ids_size() > 0) *run_id = resp.run_ids(0);
    return st;
  }
  // The runner's own timeline of a running run, as GetRun shows it live ("" if unreachable).
  std::string LiveEvents(Replica& r, const std::string& run_id) {
    v1::GetRunRequest req;
    req.set_id(run_id);
    v1::Run run;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    return r.stub->GetRun(&ctx, req, &run).ok() ? run.report_json() : "";
  }
  int StoppedMember() {
    for (int i = 0; i < cluster_->size(); ++i) {
      if (cluster_->EtcdState(i) == 'T') return i;
    }
    return -1;
  }
  std::vector<StoredRun> Runs() {
    std::vector<StoredRun> out;
    for (const auto& doc : state_->Docs("runs")) {
      StoredRun r;
      if (!google::protobuf::util::JsonStringToMessage(doc.value("run", ""), &r.run).ok()) continue;
      r.schedule_run_id = doc.value("schedule_run_id", "");
      r.started_by = doc.value("started_by", "");
      out.push_back(r);
    }
    return out;
  }
  bool HasRunBy(const std::string& id) {
    for (const auto& r : Runs()) {
      if (r.started_by == id) return true;
    }
    return false;
  }

  std::unique_ptr<EtcdCluster> cluster_;
  std::unique_ptr<StateEtcd> state_;
};

const char* kSchedule =
    "apiVersion: faultline/v1\nkind: Experiment\nmetadata:\n  name: ha\nspec:\n  seed: 9\n"
    "  workload: {kind: none}\n  steps:\n    - name: pause\n      fault:\n        process:\n"
    "          action: pause\n          target: {cmdline: \"--name ${label:member} \"}\n"
    "      target: {role: followers, mode: one}\n      duration: 20s\n  checks: [health]\n"
    "  schedule: {cron: '@every 5s', concurrencyPolicy: Forbid}\n";

TEST_F(Ha, StandbyTakesOverTheScheduleWithoutDoubleRunsOrOrphanedFaults) {
  Replica a = StartReplica("a");
  ASSERT_TRUE(WaitFor([&] { return state_->Leader() == a.id; }, 10s)) << Logs();
  Replica b = StartReplica("b");
  EXPECT_EQ(Role(b), "standby");

  // An agent registering with every replica is known to the standby as well as to the active.
  {
    auto dir = cluster_->dir() / "agent-reg";
    std::filesystem::create_directories(dir);
    AgentProcess agent(dir, {"--register", "unix://" + a.socket + ",unix://" + b.socket});
    auto knows = [&](Replica& r) {
      grpc::ClientContext ctx;
      v1::ListAgentsResponse resp;
      if (!r.stub->ListAgents(&ctx, {}, &resp).ok()) return false;
      for (const auto& x : resp.agents()) {
        if (x.agent().address() == "unix://" + agent.socket()) return true;
      }
      return false;
    };
    EXPECT_TRUE(WaitFor([&] { return knows(a) && knows(b); }, 10s)) << agent.log();
  }

  // A standby refuses changes and names the active replica's address.
  v1::SubmitExperimentRequest req;
  req.set_yaml(kSchedule);
  req.set_file_name("ha.yaml");
  v1::SubmitExperimentResponse resp;
  {
    grpc::ClientContext ctx;
    auto st = b.stub->SubmitExperiment(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(st.error_message().find("unix://" + a.socket), std::string::npos)
        << st.error_message();
  }
  {
    grpc::ClientContext ctx;
    auto st = a.stub->SubmitExperiment(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  // The standby answers reads from the store.
  {
    grpc::ClientContext ctx;
    v1::ListSchedulesResponse sched;
    ASSERT_TRUE(b.stub->ListSchedules(&ctx, {}, &sched).ok());
    ASSERT_EQ(sched.schedules_size(), 1);
    EXPECT_EQ(sched.schedules(0).cron(), "@every 5s");
  }

  // 1. SIGKILL the active replica while its run holds a pause on a follower.
  ASSERT_TRUE(WaitFor([&] { return StoppedMember() >= 0; }, 20s)) << Logs();
  const int member = StoppedMember();
  a.proc->Stop(SIGKILL);
  const auto killed = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return state_->Leader() == b.id; }, 15s)) << Logs();
  const double takeover = Secs(Clock::now() - killed);
  ASSERT_TRUE(WaitFor([&] { return cluster_->EtcdState(member) != 'T'; }, 15s)) << Logs();
  const double recovered = Secs(Clock::now() - killed);
  std::cout << "[ha] SIGKILL of the active: standby active after " << takeover
            << " s (election ttl 2 s); paused member " << cluster_->name(member)
            << " running again after " << recovered
            << " s (fault duration 20 s, lease 20 s renewed every ~6.7 s)" << std::endl;
  // Neither the fault's duration nor its lease can have ended it this early: the new active's
  // recovery did.
  EXPECT_LT(recovered, 10.0) << Logs();
  // Its faults recovered, it marks the runs and goes from "starting" to "active".
  EXPECT_TRUE(WaitFor([&] { return Role(b) == "active"; }, 5s)) << Logs();

  // The schedule continues under the new active, which runs (and pauses a member) again.
  ASSERT_TRUE(WaitFor([&] { return HasRunBy(b.id) && StoppedMember() >= 0; }, 20s)) << Logs();

  // 2. A clean SIGTERM of the active: it recovers its run's fault, records it, resigns, and the
  // standby takes over about one poll (400 ms) after the election key is gone. The schedule is
  // paused first (the run goes on) so that no new run of the successor can pause a member
  // before the check that the SIGTERMed replica left none paused; the pause carries over.
  Replica a2 = StartReplica("a2");
  ASSERT_EQ(Role(a2), "standby");
  v1::ScheduleRef ref;
  ref.set_experiment_name("ha");
  v1::ScheduleState sched_state;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(b.stub->PauseSchedule(&ctx, ref, &sched_state).ok());
  }
  ASSERT_GE(StoppedMember(), 0) << "the successor's run holds its fault";
  const auto term = Clock::now();
  ::kill(b.proc->pid(), SIGTERM);
  std::optional<Clock::time_point> gone, taken;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string l = state_->Leader();
        if (l != b.id && !gone) gone = Clock::now();
        if (l == a2.id) taken = Clock::now();
        return taken.has_value();
      },
      20s))
      << Logs();
  int status = b.proc->Stop(SIGTERM, 20s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << Logs();
  std::cout << "[ha] SIGTERM of the active: election key released " << Secs(*gone - term)
            << " s after the signal (runs cancelled and recorded first); standby active "
            << Secs(*taken - *gone) << " s after that" << std::endl;
  EXPECT_LT(Secs(*taken - *gone), 1.5) << "not one poll interval: waited for the lease?";
  EXPECT_EQ(StoppedMember(), -1) << "SIGTERM left its run's fault behind\n" << Logs();
  ASSERT_TRUE(WaitFor([&] { return Role(a2) == "active"; }, 10s)) << Logs();
  {
    grpc::ClientContext ctx;
    auto st = a2.stub->ResumeSchedule(&ctx, ref, &sched_state);
    ASSERT_TRUE(st.ok()) << st.error_message() << Logs();
  }
  ASSERT_TRUE(WaitFor([&] { return HasRunBy(a2.id); }, 20s)) << Logs();
  status = a2.proc->Stop(SIGTERM, 20s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << Logs();
  EXPECT_EQ(StoppedMember(), -1) << Logs();

  // 3. The store, read with etcdctl: no scheduled time ran twice, no two runs overlapped
  // (Forbid held across replicas), the killed run is marked interrupted.
  auto runs = Runs();
  std::map<std::string, int> per_due_time;
  std::map<std::string, int> per_replica;
  for (const auto& r : runs) {
    ++per_due_time[r.schedule_run_id];
    ++per_replica[r.started_by];
    if (r.started_by == a.id) {
      EXPECT_EQ(r.run.state(), v1::Run::INTERRUPTED) << r.run.id() << ": " << r.run.summary();
    }
  }
  std::cout << "[ha] " << runs.size() << " runs: " << per_replica[a.id] << " by the killed "
            << "replica, " << per_replica[b.id] << " by its successor, " << per_replica[a2.id]
            << " by the third" << std::endl;
  EXPECT_GE(per_replica[a.id], 1) << Logs();
  EXPECT_GE(per_replica[b.id], 1);
  EXPECT_GE(per_replica[a2.id], 1);
  for (const auto& [due, n] : per_due_time) {
    EXPECT_FALSE(due.empty()) << "a run not started by the schedule";
    EXPECT_EQ(n, 1) << "scheduled time " << due << " ran " << n << " times\n" << Logs();
  }
  std::sort(runs.begin(), runs.end(), [](const StoredRun& x, const StoredRun& y) {
    return x.run.started_at() < y.run.started_at();
  });
  for (size_t i = 1; i < runs.size(); ++i) {
    EXPECT_GE(runs[i].run.started_at(), runs[i - 1].run.ended_at())
        << runs[i].run.id() << " started before " << runs[i - 1].run.id() << " ended";
  }
}

// Fenced agent calls (issue 18): a replica paused (SIGSTOP) past its election lease is deposed;
// the standby takes over (its recovery of the paused replica's run tells every agent of that run
// the new epoch) and injects. When the old replica resumes, its run goes on to its next step and
// injects: every agent refuses it. The state etcd is paused for the first 3 s after the
// resume, so the old replica's election cannot notice its loss before its runner acts (the
// window a stall opens in production, made wide enough to be hit every time). Measured from
// outside: no member but the one the new active paused is ever stopped after the resume.
const char* kFenceOld =
    "apiVersion: faultline/v1\nkind: Experiment\nmetadata:\n  name: fence-old\nspec:\n"
    "  seed: 3\n  workload: {kind: none}\n  steps:\n"
    "    - name: first\n      fault:\n        process:\n          action: pause\n"
    "          target: {cmdline: \"--name ${label:member} \"}\n"
    "      target: {role: followers, mode: one}\n      duration: 4s\n"
    "    - name: second\n      fault:\n        process:\n          action: pause\n"
    "          target: {cmdline: \"--name ${label:member} \"}\n"
    "      target: {mode: all}\n      duration: 10s\n  checks: [health]\n";
const char* kFenceNew =
    "apiVersion: faultline/v1\nkind: Experiment\nmetadata:\n  name: fence-new\nspec:\n"
    "  seed: 4\n  workload: {kind: none}\n  steps:\n"
    "    - name: hold\n      fault:\n        process:\n          action: pause\n"
    "          target: {cmdline: \"--name ${label:member} \"}\n"
    "      target: {role: followers, mode: one}\n      duration: 30s\n  checks: [health]\n";

TEST_F(Ha, ResumedDeposedActiveCannotInject) {
  // Election ttl 6 s: the new active (renewing every 0.8 s, stepping down 0.8 s before its lease
  // would lapse) rides out a 3 s pause of the state etcd with 1.4 s to spare, while the resumed
  // replica's first renewal hangs on it. The old run's next step needs ~1 s before it injects:
  // its cluster view waits 800 ms for the member the new active paused. At ttl 4 s with a 1.5 s
  // pause that race was lost once in a full suite run (the old replica saw its lease expired and
  // cancelled the run before it sent anything, so the test proved nothing and failed).
  Replica a = StartReplica("a", "6s");
  ASSERT_TRUE(WaitFor([&] { return state_->Leader() == a.id; }, 10s)) << Logs();
  Replica b = StartReplica("b", "6s");
  ASSERT_EQ(Role(b), "standby");

  std::string old_run;
  auto st = Submit(a, kFenceOld, true, &old_run);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(old_run.empty());
  ASSERT_TRUE(WaitFor([&] { return StoppedMember() >= 0; }, 15s)) << Logs();
  // Stop the replica only once its runner has the inject's reply and sleeps out the step: stopped
  // with the reply unread, it would start the step's 4 s at the resume and still be sleeping when
  // its election notices the lost term, and cancel without sending anything.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto events = LiveEvents(a, old_run);
        return events.find("\"fault.applied\"") != std::string::npos;
      },
      10s))
      << LiveEvents(a, old_run) << Logs();
  const auto first_applied = Clock::now();
  ASSERT_EQ(::kill(a.proc->pid(), SIGSTOP), 0);

  // The standby takes over, recovers the old run's pause, and injects its own.
  ASSERT_TRUE(WaitFor([&] { return state_->Leader() == b.id; }, 15s)) << Logs();
  ASSERT_TRUE(WaitFor([&] { return Role(b) == "active"; }, 10s)) << Logs();
  ASSERT_TRUE(WaitFor([&] { return StoppedMember() == -1; }, 5s)) << "takeover recovery\n"
                                                                  << Logs();
  st = Submit(b, kFenceNew, true);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(WaitFor([&] { return StoppedMember() >= 0; }, 15s)) << Logs();
  const int held = StoppedMember();
  // The old run's first step (4 s) is over: on resume its next step injects at once.
  while (Clock::now() - first_applied < 5s) std::this_thread::sleep_for(100ms);

  ASSERT_EQ(::kill(state_->pid(), SIGSTOP), 0);
  // kill() returns before a busy etcd has stopped: resumed at once, the old replica's first
  // renewal reached the still-running store, learned its lease had expired and cancelled its run
  // before it sent anything (2 of 4 runs with the CPUs busy, and a CI run).
  ASSERT_TRUE(WaitFor([&] { return faults::process::EveryThreadStopped(state_->pid()); }, 2s));
  ASSERT_EQ(::kill(a.proc->pid(), SIGCONT), 0);
  const auto resumed = Clock::now();
  bool state_resumed = false;
  int most_stopped = 0;
  while (Clock::now() - resumed < 5s) {
    if (!state_resumed && Clock::now() - resumed >= 3000ms) {
      ::kill(state_->pid(), SIGCONT);
      state_resumed = true;
    }
    most_stopped = std::max(most_stopped, StoppedMembers());
    std::this_thread::sleep_for(20ms);
  }
  if (!state_resumed) ::kill(state_->pid(), SIGCONT);
  EXPECT_EQ(most_stopped, 1) << "the deposed replica's pause of every member was applied\n"
                             << Logs();
  EXPECT_EQ(cluster_->EtcdState(held), 'T') << "the new active's fault must hold";
  // Its run did try (the test would prove nothing otherwise), and was refused naming the epochs.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto log = Log("a");
        return log.find("inject refused") != std::string::npos &&
               log.find("lower than epoch") != std::string::npos;
      },
      15s))
      << "the resumed replica sent no inject (or it was not refused)\n"
      << Logs();
  EXPECT_TRUE(WaitFor([&] { return Role(a) == "standby"; }, 10s)) << Logs();
  EXPECT_EQ(state_->Leader(), b.id);
  std::cout << "[ha] resumed deposed replica: its inject refused by the agents, at most "
            << most_stopped << " member stopped (the new active's)" << std::endl;

  // The new active ends its run cleanly; nothing is left paused.
  int status = b.proc->Stop(SIGTERM, 20s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << Logs();
  EXPECT_TRUE(WaitFor([&] { return StoppedMember() == -1; }, 10s)) << Logs();
  a.proc->Stop(SIGTERM, 20s);
}

// An agent the takeover's recovery cannot reach (stopped here; a partition in production) has not
// heard the new term, so it would still take a stalled deposed replica's injects. The new active
// keeps the run's lease record and calls that agent again until it answers. Measured from outside:
// the agent's own controller-epochs.json, before and after it comes back.
TEST_F(Ha, AgentUnreachableAtTakeoverIsFencedWhenItAnswers) {
  Replica a = StartReplica("a", "2s");
  ASSERT_TRUE(WaitFor([&] { return state_->Leader() == a.id; }, 10s)) << Logs();
  Replica b = StartReplica("b", "2s");
  ASSERT_EQ(Role(b), "standby");
  ASSERT_TRUE(Submit(a, kFenceNew, true).ok());
  ASSERT_TRUE(WaitFor([&] { return StoppedMember() >= 0; }, 15s)) << Logs();
  const int held = StoppedMember();
  const int other = (held + 1) % cluster_->size();
  auto epochs = [&](int i) {
    std::ifstream in(cluster_->agent_state_dir(i) / "controller-epochs.json");
    return nlohmann::json::parse(in, nullptr, false);
  };
  const pid_t agent = cluster_->agent_pid(held);
  struct Continue {
    pid_t pid;
    ~Continue() { ::kill(pid, SIGCONT); }
  } continue_agent{agent}, continue_a{a.proc->pid()};
  ASSERT_EQ(::kill(agent, SIGSTOP), 0);
  ASSERT_EQ(::kill(a.proc->pid(), SIGSTOP), 0);

  ASSERT_TRUE(WaitFor(
      [&] { return Log("b").find("called again until it answers") != std::string::npos; }, 20s))
      << Logs();
  EXPECT_FALSE(state_->Docs("leases").empty()) << "the run's lease record must stay";
  EXPECT_NE(epochs(held), epochs(other)) << "the stopped agent cannot have heard the new term";

  ASSERT_EQ(::kill(agent, SIGCONT), 0);
  EXPECT_TRUE(WaitFor([&] { return epochs(held) == epochs(other); }, 10s))
      << "the agent answered but was not told the new term: " << epochs(held).dump() << " vs "
      << epochs(other).dump() << "\n"
      << Logs();
  EXPECT_TRUE(WaitFor([&] { return state_->Docs("leases").empty(); }, 10s))
      << "the lease record outlived the last recovery\n"
      << Logs();
  EXPECT_TRUE(WaitFor([&] { return StoppedMember() == -1; }, 10s)) << Logs();
  int status = b.proc->Stop(SIGTERM, 20s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << Logs();
  ::kill(a.proc->pid(), SIGCONT);
  a.proc->Stop(SIGTERM, 20s);
}

// Registrations live in the state store (issue 18): an agent that registered with a standby only
// is known to the active at once and targeted by it with no reconnect; when the active dies, a
// replica the agent never spoke to takes over with the fleet. The fault is measured from /proc
// (a victim process on the registered agent's host is stopped).
TEST_F(Ha, AgentRegisteredWithAStandbyIsTheFleetOfEveryReplica) {
  Replica a = StartReplica("a", "2s", /*static_agents=*/false, "2s");
  ASSERT_TRUE(WaitFor([&] { return state_->Leader() == a.id; }, 10s)) << Logs();
  Replica b = StartReplica("b", "2s", false, "2s");
  Replica c = StartReplica("c", "2s", false, "2s");
  ASSERT_EQ(Role(b), "standby");
  ASSERT_EQ(Role(c), "standby");

  // The victim's cmdline carries the marker; the agent's (its label) must not, or the pause
  // would match the agent too.
  const std::string marker = "fleetvictim" + std::to_string(getpid());
  const std::string label = "on" + std::to_string(getpid());
  Subprocess victim({"bash", "-c", "exec -a " + marker + " sleep 600"});
  auto victim_state = [&] {
    std::ifstream in("/proc/" + std::to_string(victim.pid()) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close = stat.rfind(')');
    return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
  };
  auto dir = cluster_->dir() / "agent-fleet";
  std::filesystem::create_directories(dir);
  AgentProcess agent(dir, {"--register", "unix://" + b.socket, "--label", "fleet=" + label});
  const std::string addr = "unix://" + agent.socket();
  auto knows = [&](Replica& r, bool* alive = nullptr) {
    grpc::ClientContext ctx;
    v1::ListAgentsResponse resp;
    if (!r.stub->ListAgents(&ctx, {}, &resp).ok()) return false;
    for (const auto& x : resp.agents()) {
      if (x.agent().address() != addr) continue;
      if (alive) *alive = x.alive();
      return true;
    }
    return false;
  };
  ASSERT_TRUE(WaitFor([&] { return knows(b); }, 10s)) << agent.log() << Logs();
  // The moment the standby knows it, so does the active: the registration is in the store.
  bool alive = false;
  EXPECT_TRUE(knows(a, &alive)) << Logs();
  EXPECT_TRUE(alive);
  EXPECT_TRUE(knows(c));
  EXPECT_NE(state_->Ctl({"get", "--prefix", state_->prefix() + "/agents/", "--keys-only"})
                .find("agent-fleet"),
            std::string::npos);

  const std::string yaml =
      "apiVersion: faultline/v1\nkind: Experiment\nmetadata:\n  name: fleet\nspec:\n"
      "  seed: 5\n  workload: {kind: none}\n  steps:\n"
      "    - name: hold\n      fault:\n        process:\n          action: pause\n"
      "          target: {cmdline: \"" +
      marker + "\"}\n      target: {mode: all, matchLabels: {fleet: " + label +
      "}}\n      duration: 2s\n  checks: [health]\n";
  // The active targets it without the agent ever having dialled it.
  auto st = Submit(a, yaml, true);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(WaitFor([&] { return victim_state() == 'T'; }, 15s)) << agent.log() << Logs();
  EXPECT_TRUE(WaitFor([&] { return victim_state() != 'T'; }, 15s)) << Logs();

  // The active dies and the standby the agent registered with is paused through the election,
  // so the replica that takes over is c, which never heard from the agent.
  a.proc->Stop(SIGKILL);
  ASSERT_EQ(::kill(b.proc->pid(), SIGSTOP), 0);
  bool c_won = WaitFor([&] { return state_->Leader() == c.id; }, 15s);
  ::kill(b.proc->pid(), SIGCONT);
  ASSERT_TRUE(c_won) << Logs();
  ASSERT_TRUE(WaitFor([&] { return Role(c) == "active"; }, 10s)) << Logs();
  ASSERT_TRUE(WaitFor([&] { return knows(c, &alive) && alive; }, 10s)) << Logs();
  st = Submit(c, yaml, true);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(WaitFor([&] { return victim_state() == 'T'; }, 15s)) << agent.log() << Logs();
  EXPECT_TRUE(WaitFor([&] { return victim_state() != 'T'; }, 15s)) << Logs();
  c.proc->Stop(SIGTERM, 20s);
  b.proc->Stop(SIGTERM, 20s);
}

// A deposed replica that has not noticed yet (its renewal loop asleep) cannot write: the write
// is refused by etcd's compare on the election key and ends its term at once.
TEST(HaStore, FencedWriteOfADeposedReplicaIsRefused) {
  StateEtcd state;
  std::vector<std::string> eps;
  for (const auto& e : state.endpoints()) eps.push_back(e.substr(e.find("//") + 2));
  controller::EtcdKeyspace ks(eps, state.prefix(), 5s, 1s);
  std::vector<std::string> logs;
  std::mutex logs_mu;
  auto log = [&](const std::string& m) {
    std::lock_guard lock(logs_mu);
    logs.push_back(m);
  };
  // Replica a renews and looks only once a minute: it will not notice losing the election.
  controller::EtcdElection a(ks, {.self = {"a", "addr-a"}, .ttl = 2s, .poll = 60s, .log = log});
  ASSERT_TRUE(a.Campaign());
  controller::EtcdStore sa(ks, a);
  sa.Put("schedules", "x", {{"by", "a"}});
  EXPECT_EQ(state.Ctl({"get", state.prefix() + "/schedules/x", "--print-value-only"}),
            "{\"by\":\"a\"}\n");

  // a's lease ends (as when it stalls past its TTL); b campaigns and wins.
  auto key = nlohmann::json::parse(state.Ctl({"get", state.prefix() + "/leader", "-w", "json"}));
  char hex[32];
  std::snprintf(hex, sizeof hex, "%llx",
                static_cast<unsigned long long>(key["kvs"][0]["lease"].get<int64_t>()));
  state.Ctl({"lease", "revoke", hex});
  controller::EtcdElection b(ks, {.self = {"b", "addr-b"}, .ttl = 2s, .log = log});
  ASSERT_TRUE(b.Campaign());
  controller::EtcdStore sb(ks, b);
  sb.Put("schedules", "x", {{"by", "b"}});
  EXPECT_TRUE(a.active()) << "a should not have noticed yet (its loop sleeps a minute)";

  EXPECT_THROW(sa.Put("schedules", "x", {{"by", "a"}}), controller::FencedError);
  EXPECT_FALSE(a.active()) << "a fenced write ends the term at once";
  EXPECT_NE(a.lost_reason().find("refused"), std::string::npos) << a.lost_reason();
  a.WaitLost();  // returns at once
  EXPECT_THROW(sa.Remove("schedules", "x"), controller::FencedError);
  EXPECT_EQ(state.Ctl({"get", state.prefix() + "/schedules/x", "--print-value-only"}),
            "{\"by\":\"b\"}\n")
      << "the deposed replica's write landed";
  EXPECT_EQ(b.Active()->id, "b");
  EXPECT_EQ(state.Leader(), "b");

  // A replica whose lease is revoked under it notices within a poll and steps down.
  key = nlohmann::json::parse(state.Ctl({"get", state.prefix() + "/leader", "-w", "json"}));
  std::snprintf(hex, sizeof hex, "%llx",
                static_cast<unsigned long long>(key["kvs"][0]["lease"].get<int64_t>()));
  auto revoked = Clock::now();
  state.Ctl({"lease", "revoke", hex});
  b.WaitLost();
  std::cout << "[ha] a replica whose lease was revoked stepped down after "
            << Secs(Clock::now() - revoked) << " s (poll " << b.poll().count()
            << " ms): " << b.lost_reason() << std::endl;
  EXPECT_FALSE(b.active());
  EXPECT_THROW(sb.Put("schedules", "x", {{"by", "b"}}), controller::FencedError);

  // Resigning deletes the key at once.
  ASSERT_TRUE(b.Campaign());
  EXPECT_EQ(state.Leader(), "b");
  b.Resign();
  EXPECT_EQ(state.Leader(), "");
}

// TLS to the state etcd (issue 18): a TLS-only etcd that requires client certificates, on
// loopback. With CA, certificate and key the controller is elected there (the election key read
// with etcdctl over TLS); without its certificate it is refused and never becomes active.
TEST(HaTls, ControllerKeepsItsStateInATlsOnlyEtcd) {
  TempDir dir("faultline-ha-tls");
  const auto d = dir.path();
  MakeCa(d, "ca");
  IssueServerCert(d, "server", "127.0.0.1", "ca");
  IssueClientCert(d, "client", "faultline-controller", "ca");
  const int port = FreePort(), peer = FreePort();
  const std::string url = "https://127.0.0.1:" + std::to_string(port);
  const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
  auto f = [&](const std::string& name) { return (d / name).string(); };
  Subprocess etcd({"etcd",
                   "--name",
                   "tls-state-" + std::to_string(getpid()),
                   "--data-dir",
                   f("etcd"),
                   "--listen-client-urls",
                   url,
                   "--advertise-client-urls",
                   url,
                   "--listen-peer-urls",
                   peer_url,
                   "--initial-advertise-peer-urls",
                   peer_url,
                   "--initial-cluster",
                   "tls-state-" + std::to_string(getpid()) + "=" + peer_url,
                   "--cert-file",
                   f("server.crt"),
                   "--key-file",
                   f("server.key"),
                   "--trusted-ca-file",
                   f("ca.crt"),
                   "--client-cert-auth"},
                  f("etcd.log"));
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(),
                {"etcdctl", "--endpoints=" + url, "--cacert=" + f("ca.crt"),
                 "--cert=" + f("client.crt"), "--key=" + f("client.key"), "--command-timeout=2s"});
    std::string out;
    return RunCommand(args, &out) == 0 ? out : "";
  };
  ASSERT_TRUE(WaitFor([&] { return !ctl({"endpoint", "health"}).empty(); }, 20s));
  // Plain HTTP to it is refused: the store can only be reached over TLS.
  std::string plain;
  EXPECT_NE(RunCommand({"etcdctl", "--endpoints=http://127.0.0.1:" + std::to_string(port),
                        "--command-timeout=2s", "get", "x"},
                       &plain),
            0);

  const std::string state = "etcd://127.0.0.1:" + std::to_string(port) + "/tls-test";
  auto start = [&](const std::string& name, std::vector<std::string> tls) {
    std::vector<std::string> argv = {Binary("controller/faultline-controller"),
                                     "--listen",
                                     "unix://" + f(name + ".sock"),
                                     "--state",
                                     state,
                                     "--election-ttl",
                                     "2s",
                                     "--etcd-endpoints",
                                     "127.0.0.1:1"};
    argv.insert(argv.end(), tls.begin(), tls.end());
    return std::make_unique<Subprocess>(argv, f(name + ".log"));
  };
  auto leader = [&] {
    auto j = nlohmann::json::parse(ctl({"get", "/tls-test/leader", "--print-value-only"}), nullptr,
                                   false);
    return j.is_object() ? j.value("id", "") : "";
  };
  auto slurp = [&](const std::string& name) {
    std::ifstream in(f(name));
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };

  // No client certificate: etcd refuses the handshake; the replica never becomes active.
  auto bare = start("bare", {"--state-cacert", f("ca.crt")});
  EXPECT_TRUE(WaitFor(
      [&] {
        return slurp("bare.log").find("cannot renew the election lease") != std::string::npos;
      },
      20s))
      << slurp("bare.log");
  EXPECT_EQ(leader(), "") << slurp("bare.log");
  bare->Stop(SIGTERM, 10s);

  auto good = start("good", {"--state-cacert", f("ca.crt"), "--state-cert", f("client.crt"),
                             "--state-key", f("client.key")});
  const std::string id = Hostname() + "-" + std::to_string(good->pid());
  EXPECT_TRUE(WaitFor([&] { return leader() == id; }, 15s)) << slurp("good.log");
  EXPECT_NE(slurp("good.log").find("(TLS)"), std::string::npos) << slurp("good.log");
  int status = good->Stop(SIGTERM, 20s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << slurp("good.log");
  EXPECT_EQ(leader(), "") << "a clean stop resigns";
  etcd.Stop(SIGTERM);
}

TEST(HaFlags, StateFlagsAreCheckedUpFront) {
  auto run = [](std::vector<std::string> extra, std::string* out) {
    std::vector<std::string> argv = {Binary("controller/faultline-controller"), "--listen",
                                     "unix:///nonexistent/c.sock", "--etcd-endpoints",
                                     "127.0.0.1:1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv, out);
  };
  std::string out;
  EXPECT_NE(run({"--state", "etcd://127.0.0.1:2379", "--state-dir", "/tmp/x"}, &out), 0);
  EXPECT_NE(out.find("--state"), std::string::npos) << out;
  EXPECT_NE(out.find("--state-dir"), std::string::npos) << out;
  EXPECT_EQ(run({"--state", "http://127.0.0.1:2379"}, &out), 2);
  EXPECT_NE(out.find("--state: \"http://127.0.0.1:2379\": not an etcd:// URL"), std::string::npos)
      << out;
  EXPECT_EQ(run({"--state", "etcd://a:1,b:99999/p"}, &out), 2);
  EXPECT_NE(out.find("endpoint \"b:99999\" is not HOST:PORT"), std::string::npos) << out;
  EXPECT_EQ(run({"--state", "etcd://a:1", "--election-ttl", "1s"}, &out), 2);
  EXPECT_NE(out.find("--election-ttl: must be at least 2s"), std::string::npos) << out;
  EXPECT_EQ(run({"--state-cacert", "/tmp/ca.crt"}, &out), 2);
  EXPECT_NE(out.find("needs --state etcd://"), std::string::npos) << out;
  EXPECT_EQ(run({"--state", "etcd://a:1", "--state-cert", "/tmp/c.crt"}, &out), 2);
  EXPECT_NE(out.find("--state-cert/--state-key"), std::string::npos) << out;
  EXPECT_EQ(run({"--state", "etcd://a:1", "--state-cacert", "/nonexistent/ca.crt"}, &out), 2);
  EXPECT_NE(out.find("/nonexistent/ca.crt"), std::string::npos) << out;
}

}  // namespace
}  // namespace faultline::testing
