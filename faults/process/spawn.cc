#include "faults/process/spawn.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "faults/core/errors.h"

extern char** environ;

namespace faultline::faults::process {
namespace {

struct ChildFailure {
  int stage;
  int err;
};
constexpr const char* kStages[] = {"setns", "stdio", "chdir", "exec"};

}  // namespace

ExecPlan MakePlan(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env, const std::string& cwd,
                  const std::string& netns, const std::string& log, const std::string& who) {
  ExecPlan p;
  p.argv_store = argv;
  std::map<std::string, std::string> merged;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) merged[k] = v;
  for (const auto& [k, v] : merged) p.env_store.push_back(k + "=" + v);
  for (auto& a : p.argv_store) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  for (auto& e : p.env_store) p.envp.push_back(e.data());
  p.envp.push_back(nullptr);
  p.cwd = cwd.empty() ? "/" : cwd;
  if (!netns.empty()) {
    p.netns.reset(::open(netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!p.netns) ThrowErrno(who + ": open netns " + netns);
  }
  std::string out = log.empty() ? "/dev/null" : log;
  if (!log.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(log).parent_path(), ec);
  }
  p.log.reset(::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!p.log) ThrowErrno(who + ": open log " + out);
  p.devnull.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!p.devnull) ThrowErrno(who + ": open /dev/null");
  return p;
}

pid_t Spawn(const ExecPlan& plan, const std::string& who) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) ThrowErrno(who + ": pipe2");
  sys::UniqueFd rd(pipefd[0]), wr(pipefd[1]);
  pid_t pid = ::fork();
  if (pid < 0) ThrowErrno(who + ": fork");
  if (pid == 0) {
    auto fail = [&](int stage) {
      ChildFailure cf{stage, errno};
      ssize_t ignored = ::write(wr.get(), &cf, sizeof(cf));
      (void)ignored;
      ::_exit(127);
    };
    // The agent blocks SIGTERM/SIGINT and ignores SIGPIPE; exec keeps both, so reset them or
    // etcd would not stop on SIGTERM.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);
    // Own session: a terminal's Ctrl-C or the supervisor's process group never reaches it.
    ::setsid();
    if (plan.netns && ::setns(plan.netns.get(), CLONE_NEWNET) != 0) fail(0);
    if (::dup2(plan.devnull.get(), 0) < 0 || ::dup2(plan.log.get(), 1) < 0 ||
        ::dup2(plan.log.get(), 2) < 0) {
      fail(1);
    }
    if (::chdir(plan.cwd.c_str()) != 0) fail(2);
    // Whatever the parent leaked without O_CLOEXEC must not reach the child.
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    ::execve(plan.argv[0], plan.argv.data(), plan.envp.data());
    fail(3);
  }
  wr.reset();
  ChildFailure cf{};
  ssize_t n;
  do {
    n = ::read(rd.get(), &cf, sizeof(cf));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(cf))) {
    ::waitpid(pid, nullptr, 0);
    std::string what = kStages[std::clamp(cf.stage, 0, 3)];
    if (cf.stage == 3) what += " " + plan.argv_store[0];
    if (cf.stage == 2) what += " " + plan.cwd;
    throw FaultError(who + ": " + what + ": " + strerror(cf.err));
  }
  return pid;
}

}  // namespace faultline::faults::process
