// ManagedProcess against real processes: what it starts is checked from outside (/proc, the
// log file, sockets), not by asking the supervisor.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "faults/core/errors.h"
#include "faults/process/managed.h"
#include "faults/process/proc.h"
#include "faults/sys/netns.h"
#include "faults/sys/rtnl.h"
#include "faults/sys/unique_fd.h"
#include "faults/syscall/interceptor.h"
#include "tests/support/subprocess.h"

namespace faultline::faults::process {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;
using testing::WaitFor;
using Clock = std::chrono::steady_clock;

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int CountLines(const std::filesystem::path& p) {
  std::string s = Slurp(p);
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

bool Alive(pid_t pid) {
  auto info = ReadProc(pid);
  return info && info->state != 'Z';
}

// Ends the managed process however the test went: ManagedProcess itself deliberately leaves
// its child running when destroyed.
struct StopOnExit {
  ManagedProcess& p;
  ~StopOnExit() {
    try {
      p.Stop(SIGKILL, 2s);
    } catch (...) {
    }
  }
};

// A network namespace with lo up, removed at the end of the test.
struct TestNetns {
  std::string name = "fl-labmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  sys::NetNs ns = sys::NetNs::Create(name);
  TestNetns() { sys::Rtnl(ns.path()).SetUp("lo"); }
  static inline int counter = 0;
};

ManagedSpec Shell(const std::string& name, const std::string& script, const TempDir& dir) {
  ManagedSpec s;
  s.name = name;
  s.argv = {"/bin/sh", "-c", script};
  s.cwd = dir.path().string();
  s.log = (dir.path() / (name + ".log")).string();
  return s;
}

using testing::FreePort;

sys::UniqueFd ListenOn(int port) {
  sys::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::listen(fd.get(), 16) != 0) {
    ThrowErrno("listen");
  }
  return fd;
}

TEST(ManagedProcess, StartsWithArgvEnvCwdAndAppendsToItsLog) {
  TempDir dir;
  ManagedSpec s = Shell("echo", "echo \"run $MARK in $(pwd)\"; exec sleep 60", dir);
  s.env["MARK"] = "m-42";
  std::filesystem::path log = s.log;
  { std::ofstream(log) << "earlier line\n"; }
  ManagedProcess p(s, dir.path() / "state");
  StopOnExit stop{p};
  p.Start();
  ASSERT_GT(p.Pid(), 0);
  EXPECT_TRUE(Alive(p.Pid()));
  ASSERT_TRUE(WaitFor([&] { return Slurp(log).find("run m-42") != std::string::npos; }, 5000ms));
  std::string text = Slurp(log);
  EXPECT_EQ(text.rfind("earlier line\n", 0), 0u) << "log must be appended to, not truncated";
  EXPECT_NE(text.find("run m-42 in " + dir.path().string()), std::string::npos) << text;
  // Its own session: signals to the supervisor's process group never reach it.
  EXPECT_EQ(::getsid(p.Pid()), p.Pid());
}

TEST(ManagedProcess, StopEscalatesToSigkillAfterGrace) {
  TempDir dir;
  ManagedProcess p(Shell("stubborn", "trap '' TERM; while :; do sleep 0.05; done", dir),
                   dir.path());
  StopOnExit stop{p};
  p.Start();
  pid_t pid = p.Pid();
  std::this_thread::sleep_for(100ms);  // let the shell install its trap
  auto t0 = Clock::now();
  p.Stop(SIGTERM, 300ms);
  auto took = Clock::now() - t0;
  EXPECT_GE(took, 300ms);
  EXPECT_FALSE(Alive(pid));
  EXPECT_EQ(p.Pid(), 0);
  ASSERT_TRUE(WIFSIGNALED(p.last_status()));
  EXPECT_EQ(WTERMSIG(p.last_status()), SIGKILL);
  EXPECT_FALSE(std::filesystem::exists(p.state_file()));
}

TEST(ManagedProcess, ChildGetsSignalsEvenIfTheSupervisorBlocksThem) {
  // The agent blocks SIGTERM in every thread; a child that inherited the mask would ignore a
  // polite stop and always be SIGKILLed.
  TempDir dir;
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  ManagedProcess p(Shell("polite", "exec sleep 60", dir), dir.path());
  StopOnExit stop{p};
  p.Start();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  auto t0 = Clock::now();
  p.Stop(SIGTERM, 5s);
  EXPECT_LT(Clock::now() - t0, 2s);
  ASSERT_TRUE(WIFSIGNALED(p.last_status()));
  EXPECT_EQ(WTERMSIG(p.last_status()), SIGTERM);
}

TEST(ManagedProcess, StopsAPausedProcessWithoutEscalating) {
  TempDir dir;
  ManagedProcess p(Shell("paused", "exec sleep 60", dir), dir.path());
  StopOnExit stop{p};
  p.Start();
  ASSERT_EQ(::kill(p.Pid(), SIGSTOP), 0);
  ASSERT_TRUE(WaitFor([&] { return ReadProc(p.Pid())->state == 'T'; }, 2000ms));
  p.Stop(SIGTERM, 5s);
  ASSERT_TRUE(WIFSIGNALED(p.last_status()));
  EXPECT_EQ(WTERMSIG(p.last_status()), SIGTERM);
}

TEST(ManagedProcess, ExecFailuresAreReportedWithTheirCause) {
  TempDir dir;
  ManagedSpec s = Shell("missing", "", dir);
  s.argv = {"/nonexistent/etcd"};
  ManagedProcess p(s, dir.path());
  try {
    p.Start();
    FAIL() << "started a missing binary";
  } catch (const FaultError& e) {
    EXPECT_NE(std::string(e.what()).find("exec /nonexistent/etcd: No such file"), std::string::npos)
        << e.what();
  }
  ManagedSpec c = Shell("badcwd", "exec sleep 1", dir);
  c.cwd = "/nonexistent-dir";
  ManagedProcess q(c, dir.path());
  try {
    q.Start();
    FAIL() << "started in a missing directory";
  } catch (const FaultError& e) {
    EXPECT_NE(std::string(e.what()).find("chdir /nonexistent-dir"), std::string::npos) << e.what();
  }
  EXPECT_EQ(q.Pid(), 0);
}

TEST(ManagedProcess, RunsInsideTheGivenNetworkNamespace) {
  TempDir dir;
  TestNetns ns;
  ManagedSpec s = Shell("inns", "readlink /proc/self/ns/net > netns.txt; exec sleep 60", dir);
  s.netns = ns.ns.path();
  ManagedProcess p(s, dir.path());
  StopOnExit stop{p};
  p.Start();
  std::filesystem::path out = dir.path() / "netns.txt";
  ASSERT_TRUE(WaitFor([&] { return CountLines(out) == 1; }, 5000ms));
  std::string want = "net:[" + std::to_string(sys::NetNs::Inode(ns.ns.path())) + "]\n";
  EXPECT_EQ(Slurp(out), want);
  struct stat mine;
  ASSERT_EQ(::stat("/proc/self/ns/net", &mine), 0);
  EXPECT_NE(Slurp(out), "net:[" + std::to_string(mine.st_ino) + "]\n");
}

TEST(ManagedProcess, TcpProbeRunsInTheProcessNamespace) {
  TempDir dir;
  TestNetns ns;
  int port = FreePort();
  ManagedSpec s = Shell("tcp", "exec sleep 60", dir);
  s.netns = ns.ns.path();
  s.ready.kind = ReadinessProbe::Kind::kTcp;
  s.ready.host = "127.0.0.1";
  s.ready.port = port;
  s.ready.interval = 20ms;
  ManagedProcess p(s, dir.path());
  StopOnExit stop{p};
  p.Start();
  EXPECT_FALSE(p.WaitReady(300ms)) << "nothing listens yet";
  // A listener on the host's loopback must not count: the probe belongs to the namespace.
  sys::UniqueFd host_listener = ListenOn(port);
  EXPECT_FALSE(p.WaitReady(200ms));
  sys::UniqueFd ns_listener;
  sys::NetNs::RunIn(ns.ns.path(), [&] { ns_listener = ListenOn(port); });
  EXPECT_TRUE(p.WaitReady(2s));
}

TEST(ManagedProcess, HttpProbeWantsTwoHundreds) {
  TempDir dir;
  int port = FreePort();
  sys::UniqueFd listener = ListenOn(port);
  std::atomic<int> code{503};
  std::atomic<bool> done{false};
  std::thread server([&] {
    while (!done) {
      pollfd pfd{listener.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 50) != 1) continue;
      sys::UniqueFd c(::accept(listener.get(), nullptr, nullptr));
      char buf[1024];
      ssize_t n = ::recv(c.get(), buf, sizeof(buf), 0);
      (void)n;
      std::string resp =
          "HTTP/1.1 " + std::to_string(code.load()) + " X\r\nContent-Length: 0\r\n\r\n";
      ssize_t w = ::send(c.get(), resp.data(), resp.size(), MSG_NOSIGNAL);
      (void)w;
    }
  });
  ManagedSpec s = Shell("http", "exec sleep 60", dir);
  s.ready.kind = ReadinessProbe::Kind::kHttp;
  s.ready.host = "127.0.0.1";
  s.ready.port = port;
  s.ready.path = "/health";
  s.ready.interval = 20ms;
  ManagedProcess p(s, dir.path());
  StopOnExit stop{p};
  p.Start();
  EXPECT_FALSE(p.WaitReady(300ms)) << "503 is not ready";
  code = 204;
  EXPECT_TRUE(p.WaitReady(2s));
  done = true;
  server.join();
}

TEST(ManagedProcess, CommandProbeAndRestartReportsTimeUntilReady) {
  TempDir dir;
  // Readiness is withdrawn when a run ends (the trap runs before Stop() sees it exit) and
  // takes each new run 300 ms to announce.
  ManagedSpec s = Shell("slow",
                        "trap 'rm -f ready; kill $!; exit 0' TERM; sleep 0.3; touch ready; "
                        "sleep 60 & wait",
                        dir);
  s.ready.kind = ReadinessProbe::Kind::kCommand;
  s.ready.command = {"/bin/sh", "-c", "test -f " + (dir.path() / "ready").string()};
  s.ready.interval = 20ms;
  s.ready.timeout = 10s;
  ManagedProcess p(s, dir.path());
  StopOnExit stop{p};
  p.Start();
  ASSERT_TRUE(p.WaitReady());
  pid_t first = p.Pid();
  auto took = p.Restart(SIGTERM, 2s);
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
  EXPECT_NE(p.Pid(), first);
  EXPECT_FALSE(Alive(first));
  EXPECT_TRUE(Alive(p.Pid()));
  p.Stop(SIGTERM, 2s);  // lets the trap end its background sleep too
}

TEST(ManagedProcess, WaitReadyGivesUpAtOnceWhenTheProcessDiesForGood) {
  TempDir dir;
  ManagedSpec s = Shell("dies", "exit 1", dir);
  s.ready.kind = ReadinessProbe::Kind::kCommand;
  s.ready.command = {"/bin/false"};
  ManagedProcess p(s, dir.path());
  p.Start();
  auto t0 = Clock::now();
  EXPECT_FALSE(p.WaitReady(10s));
  EXPECT_LT(Clock::now() - t0, 3s);
  ASSERT_TRUE(WIFEXITED(p.last_status()));
  EXPECT_EQ(WEXITSTATUS(p.last_status()), 1);
}

TEST(ManagedProcess, NoticesExitsWhenTheKernelReapsChildren) {
  // With SIGCHLD ignored there is no zombie to wait for; the exit must still be seen.
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGCHLD, &ign, &old);
  TempDir dir;
  ManagedProcess p(Shell("reaped", "sleep 0.1", dir), dir.path());
  p.Start();
  EXPECT_TRUE(WaitFor([&] { return p.Pid() == 0; }, 2000ms));
  EXPECT_EQ(p.last_status(), -1);  // unknown: the kernel took it
  ::sigaction(SIGCHLD, &old, nullptr);
}

TEST(ManagedProcess, RestartPolicies) {
  TempDir dir;
  auto runs = [&](const std::string& n) { return CountLines(dir.path() / (n + ".runs")); };
  ManagedSpec fail = Shell("fail", "echo run >> fail.runs; exit 3", dir);
  fail.restart = RestartPolicy::kOnFailure;
  fail.backoff = 20ms;
  fail.max_backoff = 100ms;
  ManagedSpec ok = Shell("ok", "echo run >> ok.runs; exit 0", dir);
  ok.restart = RestartPolicy::kOnFailure;
  ok.backoff = 20ms;
  ManagedSpec never = Shell("never", "echo run >> never.runs; exit 3", dir);
  ManagedSpec always = Shell("always", "echo run >> always.runs; exit 0", dir);
  always.restart = RestartPolicy::kAlways;
  always.backoff = 20ms;
  always.max_backoff = 50ms;
  ManagedProcess pf(fail, dir.path()), po(ok, dir.path()), pn(never, dir.path()),
      pa(always, dir.path());
  StopOnExit s1{pf}, s2{po}, s3{pn}, s4{pa};
  for (auto* p : {&pf, &po, &pn, &pa}) p->Start();
  ASSERT_TRUE(WaitFor([&] { return runs("fail") >= 4 && runs("always") >= 4; }, 5000ms));
  EXPECT_GE(pf.restarts(), 3);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(runs("ok"), 1) << "on-failure must not restart a clean exit";
  EXPECT_EQ(runs("never"), 1);
  EXPECT_EQ(pn.restarts(), 0);
  // Stop ends the restarting for good.
  pf.Stop(SIGKILL, 1s);
  pa.Stop(SIGKILL, 1s);
  int f = runs("fail"), a = runs("always");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(runs("fail"), f);
  EXPECT_EQ(runs("always"), a);
}

// What a liveness check reads: every start and exit, the exit's cause, whether the agent or a
// fault meant it, and the fatal lines this process (not an earlier one) wrote.
TEST(ManagedProcess, RecordsExitsWithTheirCauseAndWhoMeantThem) {
  TempDir dir;
  ManagedSpec s = Shell("crashy",
                        "echo '{\"level\":\"info\",\"msg\":\"serving\"}'; "
                        "if [ -e crash-now ]; then echo 'panic: boom'; echo 'goroutine 1:'; "
                        "exit 2; fi; exec sleep 60",
                        dir);
  s.restart = RestartPolicy::kOnFailure;
  s.backoff = 20ms;
  { std::ofstream(s.log) << "panic: a panic of an earlier process\n"; }
  ManagedProcess p(s, dir.path() / "state");
  StopOnExit stop{p};
  p.Start();
  const pid_t first = p.Pid();
  ASSERT_GT(first, 0);
  // 1. A fault's signal: meant.
  p.NoteSignal(first, SIGKILL, "fault process/kill");
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return p.Pid() != 0 && p.Pid() != first; }, 5000ms));
  const pid_t second = p.Pid();
  // Past its check for crash-now (exec'd into sleep): created earlier, the file made this one
  // crash instead of the next (once in a full suite run while a build ran).
  ASSERT_TRUE(WaitFor(
      [&] {
        auto info = ReadProc(second);
        return info && info->comm == "sleep";
      },
      5000ms));
  // 2. A crash of its own (the restart policy starts it again, which then crashes again).
  { std::ofstream(dir.path() / "crash-now") << "1"; }
  ASSERT_EQ(::kill(second, SIGTERM), 0);  // by hand, no fault: not meant either
  ASSERT_TRUE(WaitFor(
      [&] {
        auto ev = p.Events();
        return std::count_if(ev.begin(), ev.end(), [](const ProcessEvent& e) {
                 return e.kind == ProcessEvent::Kind::kExit && !e.fatal_lines.empty();
               }) >= 1;
      },
      5000ms));
  std::filesystem::remove(dir.path() / "crash-now");
  // 3. The agent's own stop: meant.
  ASSERT_TRUE(WaitFor([&] { return p.Pid() != 0; }, 5000ms));
  p.Stop(SIGTERM, 2s);
  std::vector<ProcessEvent> ev = p.Events();
  ASSERT_GE(ev.size(), 7u);
  EXPECT_EQ(ev[0].kind, ProcessEvent::Kind::kStart);
  EXPECT_EQ(ev[0].cause, "agent");
  EXPECT_EQ(ev[1].kind, ProcessEvent::Kind::kExit);
  EXPECT_EQ(ev[1].pid, first);
  EXPECT_EQ(ev[1].cause, "killed by signal 9 (KILL)");
  EXPECT_TRUE(ev[1].expected);
  EXPECT_EQ(ev[1].expected_by, "fault process/kill (KILL)");
  EXPECT_TRUE(ev[1].fatal_lines.empty()) << ev[1].fatal_lines[0];  // the earlier panic is not its
  EXPECT_EQ(ev[2].cause, "restart policy");
  EXPECT_EQ(ev[3].pid, second);
  EXPECT_EQ(ev[3].cause, "killed by signal 15 (TERM)");
  EXPECT_FALSE(ev[3].expected);
  EXPECT_EQ(ev[4].cause, "restart policy");
  EXPECT_EQ(ev[5].kind, ProcessEvent::Kind::kExit);
  EXPECT_EQ(ev[5].cause, "exited with status 2");
  EXPECT_FALSE(ev[5].expected);
  EXPECT_EQ(ev[5].fatal_lines, std::vector<std::string>{"panic: boom"});
  EXPECT_NE(ev[5].output_tail.find("goroutine 1:"), std::string::npos) << ev[5].output_tail;
  const ProcessEvent& last = ev.back();
  EXPECT_EQ(last.kind, ProcessEvent::Kind::kExit);
  EXPECT_TRUE(last.expected);
  EXPECT_EQ(last.expected_by, "agent stop");
}

TEST(ManagedProcess, ReadoptsARunningProcessInsteadOfStartingASecond) {
  TempDir dir;
  // GNU sleep sums its operands: the second one makes the command line unique to this test.
  std::string marker = "0.0" + std::to_string(::getpid());
  ManagedSpec s = Shell("keep", "", dir);
  s.argv = {"/bin/sleep", "60", marker};
  pid_t pid = 0;
  {
    ManagedProcess first(s, dir.path());
    first.Start();
    pid = first.Pid();
    // Destroyed here as if the agent crashed: the process must outlive it.
  }
  ASSERT_TRUE(Alive(pid));
  ManagedProcess second(s, dir.path());
  StopOnExit stop{second};
  second.Start();
  EXPECT_TRUE(second.adopted());
  EXPECT_EQ(second.Pid(), pid);
  int copies = 0;
  for (pid_t q : ListPids()) {
    auto info = ReadProc(q);
    if (info && info->state != 'Z' && info->cmdline.find(marker) != std::string::npos) ++copies;
  }
  EXPECT_EQ(copies, 1);
  // An adopted process is stopped like an own one.
  second.Stop(SIGTERM, 5s);
  EXPECT_FALSE(Alive(pid));
  ::waitpid(pid, nullptr, 0);  // in this test it is still our child: reap it
}

TEST(ManagedProcess, DoesNotAdoptAReusedPid) {
  TempDir dir;
  ManagedSpec s = Shell("reuse", "exec sleep 60", dir);
  // The recorded pid is alive but is a different process (other start time): pid reuse.
  testing::Subprocess other({"/bin/sleep", "60"});
  auto info = ReadProc(other.pid());
  ASSERT_TRUE(info);
  std::filesystem::create_directories(dir.path());
  std::ofstream(dir.path() / "reuse.json")
      << "{\"pid\": " << other.pid() << ", \"start_time\": " << info->start_time + 1 << "}\n";
  ManagedProcess p(s, dir.path());
  StopOnExit stop{p};
  p.Start();
  EXPECT_FALSE(p.adopted());
  EXPECT_NE(p.Pid(), other.pid());
  EXPECT_TRUE(Alive(other.pid()));
}

TEST(ManagedSet, LoadsAConfigFileAndServesTheSupervisorInterface) {
  TempDir dir;
  auto cfg = dir.path() / "managed.json";
  std::ofstream(cfg) << R"({"processes": [{"name": "a", "argv": ["/bin/sleep", "60"],
                             "ready": {"command": ["/bin/true"]}}]})";
  auto set = ManagedSet::FromFile(cfg, dir.path() / "state");
  set->StartAll();
  StopOnExit stop{set->Get("a")};
  EXPECT_EQ(set->Names(), std::vector<std::string>{"a"});
  pid_t pid = set->Pid("a");
  EXPECT_GT(pid, 0);
  set->Restart("a", SIGTERM, 2s);
  EXPECT_NE(set->Pid("a"), pid);
  EXPECT_THROW(set->Pid("b"), FaultError);
  std::ofstream(cfg) << R"({"processes": [{"name": "a"}]})";
  try {
    ManagedSet::FromFile(cfg, dir.path());
    FAIL();
  } catch (const ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find(cfg.string() + ": processes[0].argv: required"),
              std::string::npos)
        << e.what();
  }
}

// Each start under a seccomp filter gets a keeper of its own: after a restart the interceptor
// acts on the new process (a rule armed then fails the new process's fsyncs), never on the filter
// of the process before it, whose keeper may still be closing when the new one starts.
TEST(ManagedProcess, SyscallFilterFollowsTheProcessAcrossRestarts) {
  TempDir dir;
  ::setenv("FAULTLINE_SECCOMP_EXEC", testing::Binary("agent/faultline-seccomp-exec").c_str(), 1);
  const auto results = dir.path() / "results";
  // coreutils `sync FILE` fsyncs FILE and fails when fsync does; the filter covers children.
  ManagedSpec s = Shell("syncer",
                        "touch f; while :; do if sync f 2>/dev/null; then echo ok; else echo fail; "
                        "fi >> results; sleep 0.02; done",
                        dir);
  s.syscalls = {"fsync"};
  ManagedProcess p(s, dir.path());
  StopOnExit stop{p};
  p.Start();
  auto last_line = [&] {
    std::string all = Slurp(results);
    if (all.size() < 2) return std::string();
    return all.substr(all.rfind('\n', all.size() - 2) + 1);
  };
  for (int round = 0; round < 4; ++round) {
    if (round > 0) p.Restart(SIGTERM, 2s);
    auto interceptor = p.interceptor();
    ASSERT_TRUE(interceptor) << "round " << round;
    ASSERT_TRUE(WaitFor([&] { return last_line() == "ok\n"; }, 5s)) << "round " << round;
    syscalls::SyscallRule rule;
    rule.id = "eio-" + std::to_string(round);
    rule.syscalls = {*syscalls::ResolveSyscall("fsync")};
    rule.error = EIO;
    interceptor->Arm(rule);
    EXPECT_TRUE(WaitFor([&] { return last_line() == "fail\n"; }, 5s))
        << "round " << round << ": a rule armed after the restart did not reach the new process";
    interceptor->Disarm(rule.id);
    EXPECT_TRUE(WaitFor([&] { return last_line() == "ok\n"; }, 5s)) << "round " << round;
  }
  // One keeper socket: those of the earlier processes went with them.
  int sockets = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    sockets += e.path().filename().string().starts_with("syncer.keeper.");
  }
  EXPECT_EQ(sockets, 1);
}

}  // namespace
}  // namespace faultline::faults::process
