#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "faults/sys/unique_fd.h"

namespace faultline::faults::syscalls {

// faultline-seccomp-exec beside the running executable (the agent is installed with it), or
// $FAULTLINE_SECCOMP_EXEC when set.
std::string LoaderPath();

// The channel over which faultline-seccomp-exec hands its seccomp listener to the agent.
// Use: create it, fork, in the child call PrepareChild() and exec WrapArgv(...); in the parent
// call Receive() and give the fd to a SyscallInterceptor.
class NotifyChannel {
 public:
  NotifyChannel();  // throws FaultError

  // The argv that runs `argv` under the filter: the loader, the channel fd, the syscalls, `--`,
  // then `argv` unchanged.
  std::vector<std::string> WrapArgv(const std::vector<std::string>& argv,
                                    const std::vector<std::string>& syscalls,
                                    const std::string& loader = LoaderPath()) const;
  // Keeper mode (see AttachKeeper): the argv runs the loader with a keeper at `keeper_path`
  // instead of the fd hand-over; the parent then calls AttachKeeper, not Receive.
  static std::vector<std::string> WrapArgvWithKeeper(const std::vector<std::string>& argv,
                                                     const std::vector<std::string>& syscalls,
                                                     const std::string& keeper_path,
                                                     const std::string& loader = LoaderPath());
  // The child's end of the channel (the number WrapArgv passes).
  int child_fd() const { return child_.get(); }
  // In the forked child, before exec: lets the child's end survive exec. Async-signal-safe.
  void PrepareChild() const;
  // In the parent after fork: drops the child's end and waits for the listener. Throws
  // FaultError if the loader exits or says nothing within `timeout`.
  sys::UniqueFd Receive(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  sys::UniqueFd parent_;
  sys::UniqueFd child_;
};

// Keeper mode, for managed processes that must outlive the agent (etcd does): the loader also
// starts a small keeper process (not under the filter) that holds the listener and serves it on a
// unix socket at `path`. While an agent is attached the agent answers; when the agent's
// connection drops (crash, restart) the keeper answers every call with "continue" — including
// the calls the agent was holding when it died (it reports each held call and, every 64 calls,
// a recent notification id, so the keeper can find calls received but not yet answered) — so the
// process runs on unharmed until the next agent attaches. The keeper exits when the process and all
// its children have exited.
//
// Agent side: connects to the keeper (retrying until `timeout`, since the keeper may still be
// starting) and returns the listener plus the connection, which the SyscallInterceptor keeps.
struct KeeperAttachment {
  sys::UniqueFd listener;
  sys::UniqueFd connection;
};
KeeperAttachment AttachKeeper(const std::string& path,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10));
// Loader side, before installing the filter: binds `path`, starts the keeper (double fork, new
// session) and returns the socket to send it the listener on.
sys::UniqueFd StartKeeper(const std::string& path);

// The loader's side: installs a filter that hands `syscalls` to a listener and returns the
// listener fd. Uses SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV where the kernel has it (5.19+), so a
// held call is not restarted (and handed to us again) each time the process gets a signal: Go
// programs such as etcd are signalled constantly for preemption. Throws FaultError.
int InstallNotifyFilter(const std::vector<std::string>& syscalls, bool* wait_killable);

// Sends / receives one fd over a unix socket.
void SendFd(int socket, int fd, char tag);
sys::UniqueFd ReceiveFd(int socket, std::chrono::milliseconds timeout, char* tag);

}  // namespace faultline::faults::syscalls
