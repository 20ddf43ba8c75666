#include "tests/support/subprocess.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "faults/sys/command.h"
#include "faults/sys/unique_fd.h"

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
  // The one spawn helper (faults/sys); a test command gets as long as the test's own timeout.
  auto r = sys::RunCommand(argv, std::chrono::hours(1));
  if (output) *output = r.out + r.err;
  return r.exit_code;
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

TempDir::TempDir(const std::string& prefix, const std::filesystem::path& base) {
  std::string tmpl = (base / (prefix + "-XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp " + tmpl + " failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string JoinCsv(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

int FreePort() {
  sys::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::runtime_error("socket for a free port failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error("bind for a free port failed");
  }
  return ntohs(a.sin_port);
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
      // Generous: an agent's start sweeps every FUSE mount on the host, and on a busy machine
      // with other overlays (other tests, a lab) that took 10-20 s; a hung agent still fails.
      std::chrono::seconds(30));
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
