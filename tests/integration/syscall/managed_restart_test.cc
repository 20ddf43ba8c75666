// Syscall faults on a managed process that restarts again and again: a restart replaces the
// process's interceptor, and a fault observing or reverting at that moment must still hold the
// one it uses (a borrowed pointer would be freed under it). Meant to run under ASan too
// (cmake -DFAULTLINE_SANITIZE=ON), which turns such a use into a failure.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "faults/core/errors.h"
#include "faults/core/registry.h"
#include "faults/process/managed.h"
#include "faults/syscall/syscall_faults.h"

namespace faultline::faults {
namespace {

using namespace std::chrono_literals;

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

std::string LastLine(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  if (all.size() < 2) return "";
  return all.substr(all.rfind('\n', all.size() - 2) + 1);
}

class ManagedRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string loader = FAULTLINE_BINARY_DIR "/agent/faultline-seccomp-exec";
    if (!std::filesystem::exists(loader)) GTEST_SKIP() << loader << " not built";
    ::setenv("FAULTLINE_SECCOMP_EXEC", loader.c_str(), 1);
    char tmpl[] = "/tmp/faultline-sysrestart-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // coreutils `sync FILE` fsyncs FILE and fails when fsync does; the filter covers children.
    process::ManagedSpec s;
    s.name = "syncer";
    s.argv = {"/bin/sh", "-c",
              "touch f; while :; do if sync f 2>/dev/null; then echo ok; else echo fail; fi "
              ">> results; sleep 0.005; done"};
    s.cwd = dir_.string();
    s.log = (dir_ / "syncer.log").string();
    s.syscalls = {"fsync"};
    set_ = std::make_unique<process::ManagedSet>(std::vector<process::ManagedSpec>{s},
                                                 dir_ / "managed");
    set_->StartAll();
    syscalls::RegisterSyscallFaults(registry_);
    ctx_.state_dir = dir_;
    ctx_.agent_pid = ::getpid();
    ctx_.supervisor = set_.get();
  }
  void TearDown() override {
    if (set_) set_->Get("syncer").Stop(SIGKILL, 2s);
    set_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Fault> Eio() const {
    v1::FaultSpec spec;
    auto* f = spec.mutable_syscall();
    f->set_managed("syncer");
    f->add_syscalls("fsync");
    f->set_error("EIO");
    f->set_percent(100);
    return registry_.Create(spec, ctx_);
  }

  std::filesystem::path dir_;
  Registry registry_;
  FaultContext ctx_;
  std::unique_ptr<process::ManagedSet> set_;
};

TEST_F(ManagedRestartTest, FaultsObserveAndRevertWhileRestartsReplaceTheInterceptor) {
  std::atomic<bool> done{false};
  std::atomic<int> restarts{0};
  std::thread restarter([&] {
    for (int i = 0; i < 25; ++i) {
      try {
        set_->Restart("syncer", SIGKILL, 1s);
        ++restarts;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "restart " << i << ": " << e.what();
      }
    }
    done = true;
  });
  int applied = 0, observed = 0;
  while (!done) {
    auto fault = Eio();
    try {
      fault->Prepare();
      fault->Apply();
      ++applied;
    } catch (const FaultError&) {
      // Between a stop and the next start there is no process to act on.
      continue;
    }
    for (int k = 0; k < 20; ++k) {
      fault->Observe();
      ++observed;
    }
    fault->Revert();
  }
  restarter.join();
  std::printf("%d restarts; %d faults applied, %d observations meanwhile\n", restarts.load(),
              applied, observed);
  EXPECT_EQ(restarts, 25);
  EXPECT_GT(applied, 0);

  // The last process is served: a fault armed now fails its fsyncs, and its revert ends that.
  const auto results = dir_ / "results";
  ASSERT_TRUE(WaitFor([&] { return LastLine(results) == "ok\n"; }, 5s)) << LastLine(results);
  auto fault = Eio();
  fault->Prepare();
  fault->Apply();
  EXPECT_TRUE(WaitFor([&] { return LastLine(results) == "fail\n"; }, 5s));
  EXPECT_GT(fault->Observe().at("affected"), 0);
  fault->Revert();
  EXPECT_TRUE(WaitFor([&] { return LastLine(results) == "ok\n"; }, 5s));
}

}  // namespace
}  // namespace faultline::faults
