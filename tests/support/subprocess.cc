#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace faultline::testing {

Subprocess::Subprocess(std::vector<std::string> argv, const std::string& log) {
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    if (!log.empty()) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
    }
    // Own process group, so a test's Ctrl-C does not reach it twice and so it never signals us.
    setpgid(0, 0);
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
}

Subprocess::~Subprocess() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

bool Subprocess::Running() {
  if (reaped_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = st;
    return false;
  }
  return true;
}

int Subprocess::Stop(int sig, std::chrono::milliseconds timeout) {
  if (reaped_) return status_;
  ::kill(pid_, sig);
  if (!WaitFor([&] { return !Running(); }, timeout)) return -1;
  return status_;
}

int RunCommand(const std::vector<std::string>& argv, std::string* output) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, size_t(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string Binary(const std::string& relative) {
  return std::string(FAULTLINE_BINARY_DIR) + "/" + relative;
}

AgentProcess::AgentProcess(const std::filesystem::path& dir, std::vector<std::string> extra_args)
    : dir_(dir), socket_((dir / "agent.sock").string()), args_(std::move(extra_args)) {
  Start();
}

void AgentProcess::Start() {
  std::vector<std::string> argv = {Binary("agent/faultline-agent"), "--listen", "unix://" + socket_,
                                   "--state-dir", (dir_ / "state").string()};
  argv.insert(argv.end(), args_.begin(), args_.end());
  proc_ = std::make_unique<Subprocess>(argv, (dir_ / "agent.log").string());
  // A fresh channel per probe: a channel that failed once backs off for seconds before retrying.
  bool up = WaitFor(
      [&] {
        if (!proc_->Running()) return true;
        if (!std::filesystem::exists(socket_)) return false;
        auto stub = Stub();
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
        v1::CapabilitiesResponse resp;
        return stub->Capabilities(&ctx, {}, &resp).ok();
      },
      std::chrono::seconds(10));
  if (!up || !proc_->Running()) throw std::runtime_error("agent did not start: " + log());
}

std::unique_ptr<v1::Agent::Stub> AgentProcess::Stub() const {
  return v1::Agent::NewStub(
      grpc::CreateChannel("unix://" + socket_, grpc::InsecureChannelCredentials()));
}

void AgentProcess::Crash() { proc_->Stop(SIGKILL); }

void AgentProcess::Restart() { Start(); }

std::string AgentProcess::log() const {
  std::ifstream in(dir_ / "agent.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace faultline::testing
