// faultline-agent as a real process: faults measured from /proc, crashes by SIGKILL.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "faults/core/duration.h"
#include "faults/io/overlay.h"
#include "faults/process/proc.h"
#include "tests/support/subprocess.h"

namespace faultline::testing {
namespace {

using namespace std::chrono_literals;

char StateOf(pid_t pid) {
  auto info = faults::process::ReadProc(pid);
  return info ? info->state : '?';
}

v1::InjectRequest PauseReq(pid_t pid, std::chrono::nanoseconds duration) {
  v1::InjectRequest req;
  auto* p = req.mutable_spec()->mutable_process();
  p->set_action(v1::ProcessFault::PAUSE);
  p->mutable_target()->set_pid(pid);
  faults::ToProto(duration, req.mutable_spec()->mutable_duration());
  return req;
}

grpc::Status Inject(v1::Agent::Stub& stub, const v1::InjectRequest& req, v1::InjectResponse* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  return stub.Inject(&ctx, req, resp);
}

grpc::Status RecoverFault(v1::Agent::Stub& stub, const std::string& fault_id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::RecoverRequest req;
  req.set_fault_id(fault_id);
  v1::RecoverResponse resp;
  return stub.Recover(&ctx, req, &resp);
}

size_t ActiveFaults(v1::Agent::Stub& stub) {
  grpc::ClientContext ctx;
  v1::ListResponse resp;
  EXPECT_TRUE(stub.List(&ctx, {}, &resp).ok());
  return static_cast<size_t>(resp.faults_size());
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "integration tests run as root";
  }
  TempDir dir_{"faultline-agent-it"};
};

TEST_F(AgentTest, PauseSurvivesAgentSigkillAndNextStartResumesWithinOneSecond) {
  Subprocess victim({"sleep", "120"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'S'; }, 2s));
  AgentProcess agent(dir_.path());
  auto stub = agent.Stub();
  v1::InjectResponse resp;
  ASSERT_TRUE(Inject(*stub, PauseReq(victim.pid(), 10min), &resp).ok());
  EXPECT_EQ(resp.fault().kind(), "process/pause");
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'T'; }, 1s));

  agent.Crash();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(StateOf(victim.pid()), 'T') << "nothing but the agent resumes it";

  auto restart_began = std::chrono::steady_clock::now();
  agent.Restart();
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) != 'T'; }, 1s))
      << "paused process still stopped 1 s after the agent restarted\n"
      << agent.log();
  EXPECT_LT(std::chrono::steady_clock::now() - restart_began, 3s);
  EXPECT_NE(agent.log().find("left by a previous agent"), std::string::npos);
  EXPECT_EQ(ActiveFaults(*stub), 0u);
}

// kill(SIGSTOP) returns before a busy multi-threaded process has stopped (a loaded host, a Go
// runtime's threads): the pause counts as applied only once /proc shows every thread stopped.
// Two more spinning threads than cores keep the victim's threads waiting for a CPU.
TEST_F(AgentTest, PauseReturnsOnlyOnceEveryThreadOfABusyProcessHasStopped) {
  const int threads = 2 * static_cast<int>(std::thread::hardware_concurrency()) + 2;
  Subprocess victim(
      {Binary("tests/integration/agent/agent_busy_threads"), std::to_string(threads)});
  ASSERT_TRUE(WaitFor(
      [&] {
        std::error_code ec;
        auto it = std::filesystem::directory_iterator(
            "/proc/" + std::to_string(victim.pid()) + "/task", ec);
        return !ec && std::distance(it, {}) == threads + 1;
      },
      2s));
  AgentProcess agent(dir_.path());
  auto stub = agent.Stub();
  for (int round = 0; round < 5; ++round) {
    v1::InjectResponse resp;
    ASSERT_TRUE(Inject(*stub, PauseReq(victim.pid(), 10min), &resp).ok());
    // No wait: the reply itself must mean the process no longer runs.
    EXPECT_TRUE(faults::process::EveryThreadStopped(victim.pid())) << "round " << round;
    EXPECT_EQ(resp.fault().counters().at("stopped"), 1);
    ASSERT_TRUE(RecoverFault(*stub, resp.fault().id()).ok());
    ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'R'; }, 1s));
  }
}

// A thread in uninterruptible sleep stops only when it wakes: here a reader whose FUSE read the
// overlay delays by 3 s. The pause must say it did not take effect in time rather than report it
// applied as configured.
TEST_F(AgentTest, PauseSaysWhichTargetStillRunsWhenItCannotStopInTime) {
  const auto dir = dir_.path() / "slow";
  std::filesystem::create_directories(dir);
  faults::io::Overlay overlay(dir);
  { std::ofstream(dir / "f") << "contents"; }
  faults::io::RuleSpec spec;
  spec.kind = faults::io::RuleKind::kLatency;
  spec.path_glob = "f";
  spec.methods = faults::io::Bit(faults::io::Method::kRead);
  spec.delay = 3s;
  overlay.Arm(spec);
  Subprocess reader({"cat", (dir / "f").string()}, (dir_.path() / "cat.out").string());
  // Waiting for the delayed page: the read waits on the page lock, killably (D).
  ASSERT_TRUE(WaitFor([&] { return StateOf(reader.pid()) == 'D'; }, 2s));

  AgentProcess agent(dir_.path() / "agent");
  auto stub = agent.Stub();
  v1::InjectResponse resp;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(Inject(*stub, PauseReq(reader.pid(), 10min), &resp).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 900ms) << "the pause gives up after 1 s";
  EXPECT_EQ(resp.fault().counters().at("stopped"), 0);
  EXPECT_NE(resp.fault().description().find(
                "still running 1 s after SIGSTOP: " + std::to_string(reader.pid()) + " (cat)"),
            std::string::npos)
      << resp.fault().description();
  // Once the read returns it does stop: the signal was sent.
  EXPECT_TRUE(WaitFor([&] { return StateOf(reader.pid()) == 'T'; }, 5s));
  ASSERT_TRUE(RecoverFault(*stub, resp.fault().id()).ok());
  EXPECT_EQ(reader.Stop(0, 5s), 0);
}

TEST_F(AgentTest, RecoverOnlyRevertsWhatACrashedAgentLeftAndExits) {
  // What systemd's ExecStopPost runs after the agent died.
  Subprocess victim({"sleep", "120"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'S'; }, 2s));
  AgentProcess agent(dir_.path());
  auto stub = agent.Stub();
  v1::InjectResponse resp;
  ASSERT_TRUE(Inject(*stub, PauseReq(victim.pid(), 10min), &resp).ok());
  agent.Crash();
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'T'; }, 1s));
  Subprocess recover({Binary("agent/faultline-agent"), "--state-dir",
                      (dir_.path() / "state").string(), "--recover-only"});
  int status = recover.Stop(0, 10s);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(WaitFor([&] { return StateOf(victim.pid()) != 'T'; }, 1s));
}

// Asks the agent for an overlay over `dir`; the pid of the overlay process serving it (0 if the
// agent did not mount exactly one).
pid_t MountThroughAgent(v1::Agent::Stub& stub, const std::filesystem::path& dir) {
  grpc::ClientContext ctx;
  v1::OverlayRequest req;
  req.set_dir(dir.string());
  v1::OverlayResponse mounted;
  grpc::Status status = stub.MountOverlay(&ctx, req, &mounted);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return status.ok() && mounted.overlays_size() == 1 ? mounted.overlays(0).pid() : 0;
}

bool MountedAt(const std::string& dir) {
  std::ifstream in("/proc/mounts");
  for (std::string line; std::getline(in, line);) {
    if (line.find(" " + dir + " fuse.faultline ") != std::string::npos) return true;
  }
  return false;
}

// Issue 15: an overlay outlives its crashed agent (it is served by its own process), and what
// systemd's ExecStopPost runs after the crash finds that process through the state dir and ends
// it: no process and no mount left, and what was written through it is in the directory.
TEST_F(AgentTest, RecoverOnlyEndsTheOverlayProcessACrashedAgentLeft) {
  auto data = dir_.path() / "data";
  std::filesystem::create_directories(data);
  AgentProcess agent(dir_.path());
  auto stub = agent.Stub();
  pid_t overlay_pid = MountThroughAgent(*stub, data);
  ASSERT_GT(overlay_pid, 0);
  v1::InjectRequest req;
  auto* io = req.mutable_spec()->mutable_io();
  io->set_action(v1::IoFault::LATENCY);
  io->set_mount(data.string());
  io->add_methods("fsync");
  faults::ToProto(1ms, io->mutable_delay());
  faults::ToProto(10min, req.mutable_lease());
  v1::InjectResponse resp;
  ASSERT_TRUE(Inject(*stub, req, &resp).ok());

  agent.Crash();
  ASSERT_TRUE(MountedAt(data.string()));
  {
    std::ofstream out(data / "written-after-the-crash");
    out << "kept";
  }
  ASSERT_TRUE(std::ifstream(data / "written-after-the-crash").good()) << "the overlay still serves";
  EXPECT_NE(StateOf(overlay_pid), '?') << "the overlay process outlived its agent";

  Subprocess recover({Binary("agent/faultline-agent"), "--state-dir",
                      (dir_.path() / "state").string(), "--recover-only"});
  int status = recover.Stop(0, 20s);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(MountedAt(data.string()));
  EXPECT_TRUE(
      WaitFor([&] { return StateOf(overlay_pid) == '?' || StateOf(overlay_pid) == 'Z'; }, 5s));
  std::string kept;
  std::ifstream(data / "written-after-the-crash") >> kept;
  EXPECT_EQ(kept, "kept");
}

// An overlay that a live process still uses (etcd, which KillMode=process keeps running across
// an agent crash) is not unmounted by --recover-only: that would fail the process's next disk op
// with ENOTCONN. The crashed agent's fault is reverted (the fsync it delayed by 300 ms is fast
// again, timed from outside), the overlay keeps serving, and the next agent attaches to it.
TEST_F(AgentTest, RecoverOnlyLeavesAnOverlayInUseServingWithoutItsRules) {
  auto data = dir_.path() / "data";
  std::filesystem::create_directories(data);
  AgentProcess agent(dir_.path());
  auto stub = agent.Stub();
  pid_t overlay_pid = MountThroughAgent(*stub, data);
  ASSERT_GT(overlay_pid, 0);
  // Whatever fails below, the overlay process (started for this test) ends and the mount goes.
  struct EndOverlay {
    pid_t pid;
    std::string dir;
    ~EndOverlay() {
      if (StateOf(pid) != '?') ::kill(pid, SIGTERM);
      WaitFor([&] { return StateOf(pid) == '?' || StateOf(pid) == 'Z'; }, 5s);
      if (MountedAt(dir)) ::umount2(dir.c_str(), MNT_DETACH);
    }
  } end_overlay{overlay_pid, data.string()};
  // The user: holds a file under the overlay open, as etcd holds its WAL.
  { std::ofstream(data / "wal") << "x"; }
  Subprocess user({"/bin/sh", "-c", "exec 3<" + (data / "wal").string() + "; exec sleep 120"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(user.pid()) == 'S'; }, 2s));
  v1::InjectRequest req;
  auto* io = req.mutable_spec()->mutable_io();
  io->set_action(v1::IoFault::LATENCY);
  io->set_mount(data.string());
  io->set_path("wal");
  io->add_methods("fsync");
  faults::ToProto(300ms, io->mutable_delay());
  faults::ToProto(10min, req.mutable_lease());
  v1::InjectResponse resp;
  ASSERT_TRUE(Inject(*stub, req, &resp).ok());
  auto timed_fsync = [&] {
    int fd = ::open((data / "wal").c_str(), O_WRONLY);
    EXPECT_GE(fd, 0);
    auto t0 = std::chrono::steady_clock::now();
    ::fsync(fd);
    auto took = std::chrono::steady_clock::now() - t0;
    ::close(fd);
    return took;
  };
  EXPECT_GE(timed_fsync(), 290ms) << "the fault is armed";

  agent.Crash();
  Subprocess recover({Binary("agent/faultline-agent"), "--state-dir",
                      (dir_.path() / "state").string(), "--recover-only"});
  int status = recover.Stop(0, 20s);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(MountedAt(data.string())) << "unmounted under a live user";
  EXPECT_NE(StateOf(overlay_pid), '?');
  EXPECT_LT(timed_fsync(), 150ms) << "the crashed agent's fault is still armed";
  std::string read_back;
  std::ifstream(data / "wal") >> read_back;
  EXPECT_EQ(read_back, "x");

  // The next agent attaches to it; once nothing uses it, --recover-only ends it.
  agent.Restart();
  EXPECT_NE(agent.log().find("attached to the overlay process (pid " + std::to_string(overlay_pid)),
            std::string::npos)
      << agent.log();
  agent.Crash();
  user.Stop(SIGKILL, 2s);
  Subprocess again({Binary("agent/faultline-agent"), "--state-dir",
                    (dir_.path() / "state").string(), "--recover-only"});
  status = again.Stop(0, 20s);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_FALSE(MountedAt(data.string()));
  EXPECT_TRUE(
      WaitFor([&] { return StateOf(overlay_pid) == '?' || StateOf(overlay_pid) == 'Z'; }, 5s));
}

TEST_F(AgentTest, LapsedDurationResumesOnTime) {
  Subprocess victim({"sleep", "120"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'S'; }, 2s));
  AgentProcess agent(dir_.path());
  auto stub = agent.Stub();
  v1::InjectResponse resp;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(Inject(*stub, PauseReq(victim.pid(), 1s), &resp).ok());
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'T'; }, 1s));
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) != 'T'; }, 3s));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 2s) << "reverted later than 1 s after its end";
}

TEST_F(AgentTest, LapsedDurationWhileAgentWasDeadIsRevertedAtStart) {
  Subprocess victim({"sleep", "120"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'S'; }, 2s));
  AgentProcess agent(dir_.path());
  auto stub = agent.Stub();
  v1::InjectResponse resp;
  ASSERT_TRUE(Inject(*stub, PauseReq(victim.pid(), 500ms), &resp).ok());
  agent.Crash();
  std::this_thread::sleep_for(800ms);  // the fault's end passes with no agent
  EXPECT_EQ(StateOf(victim.pid()), 'T');
  agent.Restart();
  EXPECT_TRUE(WaitFor([&] { return StateOf(victim.pid()) != 'T'; }, 1s));
}

TEST_F(AgentTest, SigtermRevertsEverythingAndExitsZero) {
  Subprocess a({"sleep", "120"}), b({"sleep", "120"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(a.pid()) == 'S' && StateOf(b.pid()) == 'S'; }, 2s));
  AgentProcess agent(dir_.path());
  auto stub = agent.Stub();
  v1::InjectResponse resp;
  ASSERT_TRUE(Inject(*stub, PauseReq(a.pid(), 10min), &resp).ok());
  ASSERT_TRUE(Inject(*stub, PauseReq(b.pid(), 10min), &resp).ok());
  int status = agent.process().Stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status)) << agent.log();
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(WaitFor([&] { return StateOf(a.pid()) != 'T'; }, 1s));
  EXPECT_TRUE(WaitFor([&] { return StateOf(b.pid()) != 'T'; }, 1s));
}

TEST_F(AgentTest, BadInputIsRefusedWithTheFieldNamedAndNothingApplied) {
  Subprocess victim({"sleep", "120"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'S'; }, 2s));
  AgentProcess agent(dir_.path());
  auto stub = agent.Stub();
  struct Case {
    std::string name;
    v1::InjectRequest req;
    grpc::StatusCode code;
    std::string text;
  };
  std::vector<Case> cases;
  {
    v1::InjectRequest r;  // no fault kind at all
    cases.push_back({"no kind", r, grpc::INVALID_ARGUMENT, "fault: no fault kind"});
  }
  {
    v1::InjectRequest r;
    r.mutable_spec()->mutable_process()->mutable_target()->set_pid(victim.pid());
    cases.push_back({"no action", r, grpc::INVALID_ARGUMENT, "process.action: required"});
  }
  cases.push_back({"negative duration", PauseReq(victim.pid(), -5s), grpc::INVALID_ARGUMENT,
                   "duration: must not be negative"});
  cases.push_back({"missing pid", PauseReq(999999, 5s), grpc::FAILED_PRECONDITION,
                   "process.target.pid: no process with pid 999999"});
  for (int sig : {0, 999}) {
    v1::InjectRequest r;
    auto* p = r.mutable_spec()->mutable_process();
    p->set_action(v1::ProcessFault::SIGNAL);
    p->set_signal(sig);
    p->mutable_target()->set_pid(victim.pid());
    cases.push_back({"signal " + std::to_string(sig), r, grpc::INVALID_ARGUMENT,
                     "process.signal: must be a signal number between 1 and 64"});
  }
  for (const auto& c : cases) {
    v1::InjectResponse resp;
    auto st = Inject(*stub, c.req, &resp);
    EXPECT_EQ(st.error_code(), c.code) << c.name << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(c.text), std::string::npos)
        << c.name << ": " << st.error_message();
  }
  EXPECT_EQ(ActiveFaults(*stub), 0u);
  EXPECT_EQ(StateOf(victim.pid()), 'S');
}

TEST_F(AgentTest, CliInjectStatusRecoverRoundTrip) {
  Subprocess victim({"sleep", "120"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'S'; }, 2s));
  AgentProcess agent(dir_.path());
  auto run = [&](const std::string& args) {
    std::string cmd = Binary("cli/faultline") + " --agent " + agent.socket() + " " + args + " > " +
                      (dir_.path() / "out").string() + " 2>&1";
    int rc = std::system(cmd.c_str());
    std::ifstream in(dir_.path() / "out");
    std::stringstream ss;
    ss << in.rdbuf();
    return std::make_pair(WEXITSTATUS(rc), ss.str());
  };
  auto [rc, out] =
      run("-o json inject process pause --pid " + std::to_string(victim.pid()) + " --duration 5m");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'T'; }, 1s));
  auto id_pos = out.find("\"id\": \"");
  ASSERT_NE(id_pos, std::string::npos) << out;
  std::string id = out.substr(id_pos + 7, out.find('"', id_pos + 7) - id_pos - 7);
  std::tie(rc, out) = run("status");
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find(id), std::string::npos) << out;
  std::tie(rc, out) = run("recover " + id);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(WaitFor([&] { return StateOf(victim.pid()) != 'T'; }, 1s));
  std::tie(rc, out) =
      run("inject process signal --pid " + std::to_string(victim.pid()) + " --signal 999");
  EXPECT_EQ(rc, 2);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "one line: " << out;
  std::tie(rc, out) = run("--agent /nonexistent/agent.sock status");
  EXPECT_EQ(rc, 3) << out;
}

TEST_F(AgentTest, MetricsCountInjectionsAndReverts) {
  Subprocess victim({"sleep", "120"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'S'; }, 2s));
  AgentProcess agent(dir_.path(), {"--metrics-listen", "127.0.0.1:0"});
  std::string log = agent.log();
  auto at = log.find("metrics on http://");
  ASSERT_NE(at, std::string::npos) << log;
  std::string url = log.substr(at + 11, log.find('\n', at) - at - 11);
  auto stub = agent.Stub();
  v1::InjectResponse resp;
  // Long enough that the first scrape (curl, on a busy machine 200+ ms) lands inside the pause.
  ASSERT_TRUE(Inject(*stub, PauseReq(victim.pid(), 1500ms), &resp).ok());
  auto scrape = [&] {
    std::string cmd = "curl -s " + url + " > " + (dir_.path() / "m").string();
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    std::ifstream in(dir_.path() / "m");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  std::string m = scrape();
  EXPECT_NE(m.find("faultline_agent_active_faults 1"), std::string::npos) << m;
  EXPECT_NE(m.find("faultline_agent_injections_total 1"), std::string::npos) << m;
  EXPECT_NE(m.find("counter=\"signalled\"} 1"), std::string::npos) << m;
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) != 'T'; }, 5s));
  m = scrape();
  EXPECT_NE(m.find("faultline_agent_active_faults 0"), std::string::npos) << m;
  EXPECT_NE(m.find("faultline_agent_reverts_total 1"), std::string::npos) << m;
}

TEST_F(AgentTest, PlaintextTcpOffLoopbackIsRefusedAtStart) {
  Subprocess agent({Binary("agent/faultline-agent"), "--listen", "tcp://10.255.255.1:7070",
                    "--state-dir", (dir_.path() / "s").string()},
                   (dir_.path() / "log").string());
  int status = agent.Stop(0, 5s);  // signal 0: just wait for it to exit by itself
  ASSERT_TRUE(WaitFor([&] { return !agent.Running(); }, 5s));
  (void)status;
  std::ifstream in(dir_.path() / "log");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_NE(ss.str().find("off loopback"), std::string::npos) << ss.str();
}

v1::ControllerFence Fence(const std::string& controller, int64_t epoch) {
  v1::ControllerFence f;
  f.set_controller(controller);
  f.set_epoch(epoch);
  f.set_replica("replica-" + std::to_string(epoch));
  return f;
}

grpc::Status FencedPause(v1::Agent::Stub& stub, pid_t pid, const std::string& exp,
                         const v1::ControllerFence* fence, v1::InjectResponse* resp) {
  v1::InjectRequest req;
  auto* p = req.mutable_spec()->mutable_process();
  p->set_action(v1::ProcessFault::PAUSE);
  p->mutable_target()->set_pid(pid);
  faults::ToProto(std::chrono::minutes(10), req.mutable_spec()->mutable_duration());
  req.set_experiment_id(exp);
  if (fence) *req.mutable_fence() = *fence;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  return stub.Inject(&ctx, req, resp);
}

grpc::Status FencedRecover(v1::Agent::Stub& stub, const std::string& exp,
                           const v1::ControllerFence* fence) {
  v1::RecoverRequest req;
  req.set_experiment_id(exp);
  if (fence) *req.mutable_fence() = *fence;
  grpc::ClientContext ctx;
  v1::RecoverResponse resp;
  return stub.Recover(&ctx, req, &resp);
}

grpc::Status FencedRenew(v1::Agent::Stub& stub, const std::string& exp,
                         const v1::ControllerFence& fence) {
  v1::RenewRequest req;
  req.set_experiment_id(exp);
  *req.mutable_fence() = fence;
  faults::ToProto(std::chrono::seconds(30), req.mutable_lease());
  grpc::ClientContext ctx;
  v1::RenewResponse resp;
  return stub.Renew(&ctx, req, &resp);
}

// Controller fencing: the highest election epoch per controller is kept across an agent restart,
// lower ones are refused for Inject and Renew (the refused pause measured from /proc: the victim
// keeps running), Recover is always accepted and teaches the agent a newer epoch, and calls
// without a fence are accepted as always.
TEST(AgentFence, LowerEpochIsRefusedAcrossAnAgentRestartAndRecoverAlwaysWorks) {
  if (geteuid() != 0) GTEST_SKIP() << "integration tests run as root";
  TempDir dir("faultline-agent-fence");
  Subprocess victim({"sleep", "120"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'S'; }, 2s));
  AgentProcess agent(dir.path());
  auto stub = agent.Stub();
  const std::string ctl = "etcd-00000000000000aa/fence-test";
  const auto e5 = Fence(ctl, 5), e7 = Fence(ctl, 7), e9 = Fence(ctl, 9);

  // Term 5 injects; term 7 recovers it (accepted) and by that fences term 5 off.
  v1::InjectResponse resp;
  ASSERT_TRUE(FencedPause(*stub, victim.pid(), "run-5", &e5, &resp).ok());
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'T'; }, 1s));
  ASSERT_TRUE(FencedRecover(*stub, "run-5", &e7).ok());
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) != 'T'; }, 1s));

  auto st = FencedPause(*stub, victim.pid(), "run-5b", &e5, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("epoch 5"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("epoch 7"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("replica-5"), std::string::npos) << st.error_message();
  std::this_thread::sleep_for(200ms);
  EXPECT_NE(StateOf(victim.pid()), 'T') << "a refused inject was applied";

  // The agent restarts: the epoch was written down, term 5 is still refused.
  agent.Restart();
  stub = agent.Stub();
  st = FencedPause(*stub, victim.pid(), "run-5c", &e5, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(StateOf(victim.pid()), 'T');

  // Term 7 injects; term 9 takes over; term 7's renewals are refused, its recover accepted.
  ASSERT_TRUE(FencedPause(*stub, victim.pid(), "run-7", &e7, &resp).ok()) << agent.log();
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) == 'T'; }, 1s));
  ASSERT_TRUE(FencedRenew(*stub, "run-7", e7).ok());
  ASSERT_TRUE(FencedRenew(*stub, "other", e9).ok());  // a term-9 call (renewing nothing) raises it
  st = FencedRenew(*stub, "run-7", e7);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("renew refused"), std::string::npos) << st.error_message();
  EXPECT_EQ(StateOf(victim.pid()), 'T') << "refusing a renewal ends nothing by itself";
  ASSERT_TRUE(FencedRecover(*stub, "run-7", &e7).ok());
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) != 'T'; }, 1s));

  // Another controller has its own epochs; an unfenced call (no HA) is accepted as always.
  const auto other = Fence("etcd-00000000000000bb/other", 1);
  ASSERT_TRUE(FencedPause(*stub, victim.pid(), "other-1", &other, &resp).ok());
  ASSERT_TRUE(FencedRecover(*stub, "other-1", nullptr).ok());
  ASSERT_TRUE(FencedPause(*stub, victim.pid(), "plain", nullptr, &resp).ok());
  ASSERT_TRUE(FencedRecover(*stub, "plain", nullptr).ok());
  ASSERT_TRUE(WaitFor([&] { return StateOf(victim.pid()) != 'T'; }, 1s));
}

}  // namespace
}  // namespace faultline::testing
