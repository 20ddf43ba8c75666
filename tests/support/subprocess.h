#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "faultline/v1/agent.grpc.pb.h"

namespace faultline::testing {

// A child process the test started; SIGKILLed and reaped on destruction unless it already
// exited, so a failing test never leaves it behind.
class Subprocess {
 public:
  // argv[0] is looked up in PATH. stdout/stderr go to `log` (appended) if given.
  explicit Subprocess(std::vector<std::string> argv, const std::string& log = "");
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // Sends `sig`; returns the exit status (as from waitpid) once it exits, or -1 on timeout.
  int Stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool Running();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// Runs `argv` to completion (argv[0] looked up in PATH) through sys::RunCommand, returning the
// exit code (-1 if killed) and capturing stdout, then stderr.
int RunCommand(const std::vector<std::string>& argv, std::string* output);

// Polls `cond` every 5 ms until it holds or `limit` passes.
bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit);

// A fresh directory under `base` (/tmp; /var/tmp where a test needs the real disk rather than
// tmpfs), removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "faultline-test",
                   const std::filesystem::path& base = "/tmp");
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// "a,b,c": the comma-separated lists flags like --agents and --endpoints take.
std::string JoinCsv(const std::vector<std::string>& items);

// A loopback TCP port nobody listens on right now (bound, then released).
int FreePort();

// Path of a built binary, e.g. Binary("agent/faultline-agent").
std::string Binary(const std::string& relative);

// A faultline-agent child on a unix socket with its own state dir.
class AgentProcess {
 public:
  AgentProcess(const std::filesystem::path& dir, std::vector<std::string> extra_args = {});
  std::string socket() const { return socket_; }
  Subprocess& process() { return *proc_; }
  std::unique_ptr<v1::Agent::Stub> Stub() const;
  // Kills the agent without letting it clean up.
  void Crash();
  // Starts it again with the same arguments and waits until it serves.
  void Restart();
  std::string log() const;

 private:
  void Start();
  std::filesystem::path dir_;
  std::string socket_;
  std::vector<std::string> args_;
  std::unique_ptr<Subprocess> proc_;
};

}  // namespace faultline::testing
