// Syscall faults on a real child started under the real loader (faultline-seccomp-exec): the
// child measures its own fsync results and latency; etcd is judged by an independent client
// (etcdctl) and its own log.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "faults/core/duration.h"
#include "faults/core/registry.h"
#include "faults/syscall/interceptor.h"
#include "faults/syscall/launch.h"
#include "faults/syscall/syscall_faults.h"
#include "tests/support/subprocess.h"

namespace faultline::faults::syscalls {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const std::string kLoader = FAULTLINE_BINARY_DIR "/agent/faultline-seccomp-exec";
const std::string kProbe = FAULTLINE_BINARY_DIR "/tests/integration/syscall/syscall_fsync_probe";

// A child started the way the agent's supervisor starts a managed process under the filter.
// Killed and reaped on destruction, even when the test fails.
class ManagedChild {
 public:
  ManagedChild(const std::vector<std::string>& argv, const std::vector<std::string>& syscalls,
               const std::string& log = "", const std::string& keeper = "") {
    NotifyChannel channel;
    auto wrapped = keeper.empty()
                       ? channel.WrapArgv(argv, syscalls, kLoader)
                       : NotifyChannel::WrapArgvWithKeeper(argv, syscalls, keeper, kLoader);
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    std::vector<char*> cargv;
    for (auto& a : wrapped) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    int logfd =
        log.empty() ? -1 : open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    pid_ = fork();
    if (pid_ == 0) {
      channel.PrepareChild();
      dup2(in[0], 0);
      dup2(logfd >= 0 ? logfd : out[1], 1);
      if (logfd >= 0) dup2(logfd, 2);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (logfd >= 0) close(logfd);
    to_child_ = fdopen(in[1], "w");
    from_child_ = fdopen(out[0], "r");
    if (keeper.empty())
      interceptor_ = std::make_shared<SyscallInterceptor>(channel.Receive(), syscalls);
  }
  // Closes the child's stdin: the probe exits.
  void CloseInput() {
    if (to_child_) fclose(to_child_);
    to_child_ = nullptr;
  }
  ~ManagedChild() {
    CloseInput();
    if (from_child_) fclose(from_child_);
    Kill();
    interceptor_.reset();
  }
  void Kill() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status_, 0);
      reaped_ = true;
    }
  }
  // Waits up to `limit` for the child to exit; its wait status, or -1.
  int WaitExit(std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!reaped_ && std::chrono::steady_clock::now() < end) {
      if (waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
      std::this_thread::sleep_for(10ms);
    }
    return reaped_ ? status_ : -1;
  }

  // Runs "fsync N" in the probe and parses its answer.
  std::map<std::string, double> Run(const std::string& call, int n) {
    std::fprintf(to_child_, "%s %d\n", call.c_str(), n);
    std::fflush(to_child_);
    char line[256] = {};
    if (!std::fgets(line, sizeof line, from_child_)) return {};
    std::map<std::string, double> out;
    std::istringstream ss(line);
    std::string kv;
    while (ss >> kv) {
      auto eq = kv.find('=');
      out[kv.substr(0, eq)] = std::stod(kv.substr(eq + 1));
    }
    return out;
  }

  pid_t pid() const { return pid_; }
  SyscallInterceptor& interceptor() { return *interceptor_; }
  std::shared_ptr<SyscallInterceptor> shared_interceptor() { return interceptor_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  FILE* to_child_ = nullptr;
  FILE* from_child_ = nullptr;
  std::shared_ptr<SyscallInterceptor> interceptor_;
};

// The agent's supervisor as the syscall family sees it: one managed process by name.
class OneProcessSupervisor : public Supervisor {
 public:
  OneProcessSupervisor(std::string name, ManagedChild* child)
      : name_(std::move(name)), child_(child) {}
  std::vector<std::string> Names() const override { return {name_}; }
  int Pid(std::string_view name) const override { return Check(name), child_->pid(); }
  std::chrono::nanoseconds Restart(std::string_view, int, std::chrono::nanoseconds) override {
    throw FaultError("not supported here");
  }
  std::chrono::nanoseconds Start(std::string_view) override { throw FaultError("not supported"); }
  std::shared_ptr<SyscallInterceptor> Interceptor(std::string_view name) override {
    Check(name);
    return child_->shared_interceptor();
  }

 private:
  void Check(std::string_view name) const {
    if (name != name_) throw FaultError("no managed process \"" + std::string(name) + "\"");
  }
  std::string name_;
  ManagedChild* child_;
};

class SyscallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    RegisterSyscallFaults(registry_);
    char tmpl[] = "/tmp/faultline-syscall-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  v1::FaultSpec Spec(std::vector<std::string> calls, std::string error, double percent = 0) {
    v1::FaultSpec s;
    s.set_seed(42);
    auto* f = s.mutable_syscall();
    f->set_managed("probe");
    for (auto& c : calls) f->add_syscalls(c);
    f->set_error(error);
    f->set_percent(percent);
    return s;
  }

  Registry registry_;
  std::filesystem::path dir_;
};

TEST_F(SyscallTest, NoRuleArmedCallsContinue) {
  ManagedChild child({kProbe, (dir_ / "f").string()}, {"fsync", "fdatasync"});
  auto r = child.Run("fsync", 200);
  EXPECT_EQ(r["ok"], 200);
  EXPECT_EQ(r["eio"], 0);
  auto t = child.interceptor().Totals();
  EXPECT_GE(t.notified, 200);  // every fsync went through the listener...
  EXPECT_EQ(t.failed, 0);      // ...and was let run
}

TEST_F(SyscallTest, ErrnoAtPercentThenDisarmed) {
  ManagedChild child({kProbe, (dir_ / "f").string()}, {"fsync", "fdatasync"});
  OneProcessSupervisor sup("probe", &child);
  FaultContext ctx;
  ctx.supervisor = &sup;
  auto fault = registry_.Create(Spec({"fsync"}, "EIO", 30), ctx);
  fault->Prepare();
  fault->Apply();
  auto r = child.Run("fsync", 1000);
  std::printf("fsync EIO at 30%%: child saw %g EIO of 1000\n", r["eio"]);
  EXPECT_NEAR(r["eio"], 300, 50);
  EXPECT_EQ(r["ok"] + r["eio"], 1000);
  EXPECT_EQ(fault->Observe()["affected"], static_cast<int64_t>(r["eio"]));
  // fdatasync is intercepted but not in the rule.
  EXPECT_EQ(child.Run("fdatasync", 100)["ok"], 100);
  fault->Revert();
  auto after = child.Run("fsync", 300);
  EXPECT_EQ(after["ok"], 300);
  EXPECT_EQ(after["eio"], 0);
}

TEST_F(SyscallTest, SameSeedSameFailures) {
  std::vector<double> seen;
  for (int run = 0; run < 2; ++run) {
    ManagedChild child({kProbe, (dir_ / "f").string()}, {"fsync"});
    OneProcessSupervisor sup("probe", &child);
    FaultContext ctx;
    ctx.supervisor = &sup;
    auto fault = registry_.Create(Spec({"fsync"}, "EIO", 50), ctx);
    fault->Apply();
    std::string pattern;
    for (int i = 0; i < 40; ++i) pattern += child.Run("fsync", 1)["eio"] > 0 ? '1' : '0';
    seen.push_back(static_cast<double>(std::hash<std::string>{}(pattern)));
    fault->Revert();
  }
  EXPECT_EQ(seen[0], seen[1]);
}

TEST_F(SyscallTest, DelayMeasuredByTheChildAndMaxCount) {
  ManagedChild child({kProbe, (dir_ / "f").string()}, {"fsync", "fdatasync"});
  OneProcessSupervisor sup("probe", &child);
  FaultContext ctx;
  ctx.supervisor = &sup;
  auto before = child.Run("fdatasync", 20);

  auto spec = Spec({"fdatasync"}, "");
  ToProto(30ms, spec.mutable_syscall()->mutable_delay());
  auto delay = registry_.Create(spec, ctx);
  delay->Prepare();
  delay->Apply();
  auto during = child.Run("fdatasync", 20);
  delay->Revert();
  auto after = child.Run("fdatasync", 20);
  std::printf("fdatasync mean: %.0fus before, %.0fus with 30ms delay, %.0fus after\n",
              before["mean_us"], during["mean_us"], after["mean_us"]);
  EXPECT_EQ(during["ok"], 20);
  EXPECT_GE(during["mean_us"], 30000);
  // Generous: the 2 shared CPUs here add scheduling noise, but a stall of the wrong size (or one
  // per retry) would be far outside this.
  EXPECT_LT(during["mean_us"], before["mean_us"] + 30000 + 60000);
  EXPECT_LT(after["mean_us"], 15000);

  auto limited = Spec({"fsync"}, "ENOSPC");
  limited.mutable_syscall()->set_max_count(5);
  auto lim = registry_.Create(limited, ctx);
  lim->Apply();
  auto r = child.Run("fsync", 50);
  EXPECT_EQ(r["other"], 5);  // ENOSPC, exactly max_count times
  EXPECT_EQ(r["ok"], 45);
  lim->Revert();
}

TEST_F(SyscallTest, NotInterceptedOrNotManagedIsRefused) {
  ManagedChild child({kProbe, (dir_ / "f").string()}, {"fsync"});
  OneProcessSupervisor sup("probe", &child);
  FaultContext ctx;
  ctx.supervisor = &sup;
  auto f = registry_.Create(Spec({"fsync", "renameat2"}, "EIO"), ctx);
  try {
    f->Prepare();
    FAIL();
  } catch (const FaultError& e) {
    EXPECT_THAT(e.what(), HasSubstr("syscall.syscalls[1]: renameat2 is not intercepted"));
  }
  auto other = Spec({"fsync"}, "EIO");
  other.mutable_syscall()->set_managed("nope");
  EXPECT_THROW(registry_.Create(other, ctx)->Prepare(), FaultError);
}

// Keeper mode: the agent holding the interceptor dies (SIGKILL) while it holds a call; the
// process is released and runs on (calls continue, not ENOSYS and not a hang), and the next agent
// attaches to the same keeper and can fault it again.
TEST_F(SyscallTest, KeeperOutlivesTheAgentAndFailsOpen) {
  const std::string keeper = (dir_ / "keeper.sock").string();
  ManagedChild child({kProbe, (dir_ / "f").string()}, {"fsync", "fdatasync"}, "", keeper);
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t agent = fork();
  ASSERT_GE(agent, 0);
  if (agent == 0) {
    // The first agent: EIO on every fsync, and a 30s stall on fdatasync.
    try {
      auto a = AttachKeeper(keeper);
      SyscallInterceptor in(std::move(a.listener), std::move(a.connection), {"fsync", "fdatasync"});
      SyscallRule eio{"eio", {*ResolveSyscall("fsync")}, EIO};
      SyscallRule stall{"stall", {*ResolveSyscall("fdatasync")}, 0, 30s};
      in.Arm(eio);
      in.Arm(stall);
      (void)!write(ready[1], "r", 1);
      while (true) pause();
    } catch (...) {
    }
    _exit(1);
  }
  close(ready[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  EXPECT_EQ(child.Run("fsync", 5)["eio"], 5);

  // A call held by the agent when it dies.
  std::thread killer([&] {
    std::this_thread::sleep_for(300ms);
    kill(agent, SIGKILL);
  });
  auto held = child.Run("fdatasync", 1);
  killer.join();
  int status;
  waitpid(agent, &status, 0);
  EXPECT_EQ(held["ok"], 1);
  EXPECT_LT(held["max_us"], 5e6) << "the held call was not released when the agent died";
  auto alone = child.Run("fsync", 20);
  EXPECT_EQ(alone["ok"], 20) << "with no agent the keeper lets calls run";

  // The next agent attaches to the same keeper.
  auto a = AttachKeeper(keeper);
  SyscallInterceptor in(std::move(a.listener), std::move(a.connection), {"fsync", "fdatasync"});
  in.Arm({"again", {*ResolveSyscall("fsync")}, EIO});
  EXPECT_EQ(child.Run("fsync", 5)["eio"], 5);
  in.Disarm("again");
  EXPECT_EQ(child.Run("fsync", 5)["ok"], 5);

  // The keeper leaves with the process.
  child.CloseInput();
  EXPECT_NE(child.WaitExit(5s), -1);
  auto end = std::chrono::steady_clock::now() + 5s;
  while (std::filesystem::exists(keeper) && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(std::filesystem::exists(keeper)) << "keeper outlived its process";
}

// The agent dies after receiving a call and before answering it (no rule held it on purpose):
// from the id it last reported, the keeper finds and releases the call.
TEST_F(SyscallTest, KeeperReleasesACallTheAgentReceivedButNeverAnswered) {
  const std::string keeper = (dir_ / "keeper.sock").string();
  ManagedChild child({kProbe, (dir_ / "f").string()}, {"fsync"}, "", keeper);
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t agent = fork();
  ASSERT_GE(agent, 0);
  if (agent == 0) {
    // An agent that takes one call, reports its id the way SyscallInterceptor does, and hangs.
    auto a = AttachKeeper(keeper);
    (void)!write(ready[1], "a", 1);
    pollfd p{a.listener.get(), POLLIN, 0};
    poll(&p, 1, 10000);
    seccomp_notif req;
    memset(&req, 0, sizeof req);
    if (ioctl(a.listener.get(), SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) _exit(1);
    char msg[9] = {'R'};
    memcpy(msg + 1, &req.id, sizeof req.id);
    (void)!send(a.connection.get(), msg, sizeof msg, 0);
    (void)!write(ready[1], "r", 1);
    while (true) pause();
  }
  close(ready[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);  // attached
  std::thread killer([&] {
    char r;
    if (read(ready[0], &r, 1) == 1) {
      std::this_thread::sleep_for(100ms);
      kill(agent, SIGKILL);
    }
  });
  auto r = child.Run("fsync", 1);
  killer.join();
  close(ready[0]);
  int status;
  waitpid(agent, &status, 0);
  EXPECT_EQ(r["ok"], 1);
  EXPECT_EQ(child.Run("fsync", 10)["ok"], 10);
}

using testing::FreePort;

// Runs etcdctl against `endpoint`; returns (exit status, seconds taken).
std::pair<int, double> Etcdctl(const std::string& endpoint, const std::string& args) {
  std::string cmd = "ETCDCTL_API=3 /usr/bin/etcdctl --endpoints=" + endpoint +
                    " --command-timeout=5s " + args + " >/dev/null 2>&1";
  auto t0 = std::chrono::steady_clock::now();
  int rc = std::system(cmd.c_str());
  return {rc, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
}

TEST_F(SyscallTest, EtcdUnderTheLoaderFeelsFdatasyncFaults) {
  if (!std::filesystem::exists("/usr/bin/etcd")) GTEST_SKIP() << "no etcd";
  int client = FreePort(), peer = FreePort();
  std::string c = "http://127.0.0.1:" + std::to_string(client);
  std::string p = "http://127.0.0.1:" + std::to_string(peer);
  std::string log = (dir_ / "etcd.log").string();
  ManagedChild etcd({"/usr/bin/etcd", "--name", "s1", "--data-dir", (dir_ / "data").string(),
                     "--listen-client-urls", c, "--advertise-client-urls", c, "--listen-peer-urls",
                     p, "--initial-advertise-peer-urls", p, "--initial-cluster", "s1=" + p,
                     "--logger", "zap", "--log-outputs", "stderr"},
                    {"fdatasync", "fsync"}, log);
  OneProcessSupervisor sup("etcd", &etcd);
  FaultContext ctx;
  ctx.supervisor = &sup;
  bool healthy = false;
  for (int i = 0; i < 100 && !healthy; ++i) {
    healthy = Etcdctl(c, "endpoint health").first == 0;
    if (!healthy) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(healthy) << "etcd did not become healthy; log: " << log;
  auto base = Etcdctl(c, "put k v0");
  ASSERT_EQ(base.first, 0);

  // A 300ms stall on every fdatasync: each put waits for its WAL sync.
  auto slow = registry_.Create(
      [&] {
        v1::FaultSpec s;
        s.mutable_syscall()->set_managed("etcd");
        s.mutable_syscall()->add_syscalls("fdatasync");
        ToProto(300ms, s.mutable_syscall()->mutable_delay());
        return s;
      }(),
      ctx);
  slow->Prepare();
  slow->Apply();
  auto delayed = Etcdctl(c, "put k v1");
  slow->Revert();
  std::printf("etcd put: %.0fms normally, %.0fms with fdatasync +300ms\n", base.second * 1000,
              delayed.second * 1000);
  EXPECT_EQ(delayed.first, 0);
  EXPECT_GE(delayed.second, 0.3);
  EXPECT_GE(slow->Observe()["affected"], 1);

  // EIO on every fdatasync: etcd cannot make its WAL durable.
  v1::FaultSpec eio;
  eio.mutable_syscall()->set_managed("etcd");
  eio.mutable_syscall()->add_syscalls("fdatasync");
  eio.mutable_syscall()->set_error("EIO");
  auto fail = registry_.Create(eio, ctx);
  fail->Prepare();
  fail->Apply();
  auto put = Etcdctl(c, "put k v2");
  int status = etcd.WaitExit(10s);
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  std::printf("etcd put under fdatasync EIO: exit %d after %.0fms; etcd wait status %d\n",
              put.first, put.second * 1000, status);
  for (std::istringstream ls(text); std::getline(ls, c);) {
    if (c.find("input/output error") != std::string::npos) std::printf("etcd log: %s\n", c.c_str());
  }
  EXPECT_NE(put.first, 0) << "the write should not be acknowledged";
  ASSERT_NE(status, -1) << "etcd kept running";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  EXPECT_THAT(text, HasSubstr("input/output error"));
}

}  // namespace
}  // namespace faultline::faults::syscalls
