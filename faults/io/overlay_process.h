#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "faultline/v1/overlay.pb.h"
#include "faults/io/overlay.h"
#include "faults/sys/unique_fd.h"

namespace faultline::faults::io {

// Overlays outlive their agent: each one is served by its own small process, faultline-overlay,
// which mounts the Overlay, runs its FUSE threads and its rules (the crash model included), and
// answers the agent on a unix socket (SOCK_SEQPACKET, one OverlayControl per request, one
// OverlayReply back; proto/faultline/v1/overlay.proto). An agent that dies leaves the overlay
// serving etcd's IO; the next agent finds the socket in its state dir and attaches again. Every
// rule carries a lease that the overlay process enforces itself, so a rule whose agent died ends
// on time without it (the dead-man switch). The process touches nothing but its own mount.

// faultline-overlay beside the running executable (it is installed beside faultline-agent), or
// $FAULTLINE_OVERLAY when set.
std::string OverlayServerPath();

// faultline-overlay's main loop: mounts an Overlay over `dir`, serves `socket` until a stop
// request, SIGTERM or SIGINT, then disarms everything and unmounts. Says "ok" (or the reason it
// could not mount) on `ready_fd` once, then closes it. Returns the exit code.
struct ServeOptions {
  std::filesystem::path dir;
  std::filesystem::path socket;
  Overlay::Options overlay;
  int ready_fd = -1;
};
int ServeOverlay(const ServeOptions& options);

// The agent's end of one overlay process. Thread-safe: requests are serialised on the
// connection. Every call throws FaultError when the process is gone.
class OverlayClient {
 public:
  // Attaches to the overlay process serving `socket`; throws FaultError if none answers.
  static std::shared_ptr<OverlayClient> Connect(const std::filesystem::path& socket);
  // Starts `server` (faultline-overlay) over `dir`, serving `socket`, in a session of its own
  // (so it outlives the caller) and returns once it has mounted. Throws FaultError with the
  // process's own reason when it cannot.
  static std::shared_ptr<OverlayClient> Spawn(const std::filesystem::path& dir,
                                              const std::filesystem::path& socket,
                                              const std::string& server, Overlay::Options options);

  const std::string& dir() const { return dir_; }
  const std::string& instance() const { return instance_; }
  pid_t pid() const { return pid_; }
  const std::filesystem::path& socket() const { return socket_; }
  // True when this client found the process running (a previous agent started it).
  bool attached() const { return attached_; }

  v1::OverlayReply State();
  // Arms the io fault `spec` until `lease` from now; returns the rule's id.
  uint64_t Arm(const v1::FaultSpec& spec, std::chrono::nanoseconds lease);
  bool Disarm(uint64_t rule_id);
  void Lease(uint64_t rule_id, std::chrono::nanoseconds lease);
  // The crash command (Overlay::Crash); false if a crash was already under way or it did not
  // finish in time.
  bool Crash();
  // Asks the process to disarm, unmount and exit, and waits until it did; a process that does
  // not answer is killed and its mount detached. Idempotent.
  void Stop();

 private:
  OverlayClient() = default;
  v1::OverlayReply Call(const v1::OverlayControl& request, std::chrono::milliseconds timeout);
  void Hello();

  std::mutex mu_;
  sys::UniqueFd conn_;
  std::filesystem::path socket_;
  std::string dir_, instance_;
  pid_t pid_ = 0;
  bool attached_ = false;
  bool stopped_ = false;
};

// One agent's overlays, by mount directory. Thread-safe. The overlay processes it starts serve
// sockets in `socket_dir` (the agent's state dir): that is how the next agent finds them.
//   Attach()     attaches to every overlay process serving a socket in socket_dir (agent start);
//                sockets whose process is gone are removed.
//   Mount(dir)   the overlay over dir: already known, found serving at dir's socket, or started
//                (a dead faultline mount there is swept first; a live one served by a process
//                that is not ours is refused).
//   Unmount(dir) ends the overlay process; false if this manager has no overlay there.
//   Find(dir)    the overlay at dir or nullptr; IO faults arm their rules through it.
//   UnmountAll() ends every overlay process this manager knows.
//   UnmountIdle() ends those no process uses and says why it left the others (--recover-only:
//                 unmounting under a live etcd would fail its next disk op with ENOTCONN).
class OverlayManager {
 public:
  explicit OverlayManager(std::filesystem::path socket_dir,
                          std::string server = OverlayServerPath());
  std::vector<std::string> Attach();
  std::shared_ptr<OverlayClient> Mount(const std::filesystem::path& dir,
                                       Overlay::Options options = {});
  bool Unmount(const std::filesystem::path& dir);
  std::shared_ptr<OverlayClient> Find(const std::filesystem::path& dir) const;
  std::vector<std::string> Mounts() const;
  // Sweeps faultline mounts this manager does not own (see SweepStaleMounts).
  std::vector<std::string> Sweep() const;
  std::vector<std::string> UnmountAll();
  std::vector<std::string> UnmountIdle();

 private:
  static std::string Key(const std::filesystem::path& dir);
  std::filesystem::path SocketFor(const std::string& key) const;
  std::filesystem::path socket_dir_;
  std::string server_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<OverlayClient>> overlays_;
};

}  // namespace faultline::faults::io
