#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faults/io/rules.h"
#include "faults/sys/realtime.h"

namespace faultline::faults::io {

// A passthrough FUSE filesystem (libfuse3 low-level API, multithreaded loop) mounted over a
// directory. The directory's real contents stay reachable to the overlay through an O_PATH fd
// opened before the mount; everything a process does under the directory afterwards goes through
// the overlay, where armed rules can delay, fail, shorten or corrupt it.
//
// RAII: the constructor mounts (throws FaultError with the reason if it cannot), the destructor
// releases every delayed reply, unmounts and joins the FUSE threads. Processes that opened files
// under the directory before the mount keep using the real files and never see a rule; processes
// that still hold files open at unmount see ENOTCONN from then on (the connection is aborted so
// the unmount never hangs) - mount before starting the target and unmount after stopping it.
//
// Mounts carry fsname "faultline" and type "fuse.faultline" so SweepStaleMounts can find the
// ones a crashed process left behind.
class Overlay {
 public:
  struct Options {
    // Upper bound of FUSE worker threads. Delayed replies do not hold a worker (they wait on
    // the overlay's timer thread), so this only bounds truly concurrent disk ops.
    int max_threads = 32;
    // Extended attributes through the overlay. Off, the first xattr call of each kind is
    // answered ENOSYS, after which the kernel answers EOPNOTSUPP itself for the rest of the
    // mount: above all it stops sending the GETXATTR security.capability that it otherwise
    // asks before every buffered write (one FUSE round trip per write, bench/RESULTS.md).
    // The kernel never asks again on that mount, so this is chosen at mount time: xattr rules
    // (getxattr/setxattr/listxattr/removexattr methods) need an overlay mounted with it on.
    bool xattr = false;
    // The release thread of delayed replies wakes this long before a deadline and spins the
    // rest; 0 (default): the absolute timer alone. For measuring whether spinning pays.
    int64_t release_spin_ns = 0;
    // How the FUSE workers are scheduled. A delayed request first waits for a worker to pick
    // it up, so on a busy host an ordinary worker adds the host's scheduling latency to every
    // injected delay (bench/delay: p99 +0.85 ms real-time vs tens of ms ordinary, under full
    // CPU stress). Real-time workers (SCHED_FIFO, below the release thread) also run the
    // target's passthrough ops at real-time priority, which is only worth it while a delay is
    // being measured: kWhileDelaying (default) moves them to SCHED_FIFO while a rule that
    // delays replies is armed and back when the last one goes; kRealtime: always; kOrdinary:
    // never. Where SCHED_FIFO is refused the workers stay ordinary and WorkerScheduling says why.
    enum class Workers { kOrdinary, kWhileDelaying, kRealtime };
    Workers workers = Workers::kWhileDelaying;
  };
  explicit Overlay(const std::filesystem::path& dir);
  Overlay(const std::filesystem::path& dir, Options options);
  ~Overlay();
  Overlay(const Overlay&) = delete;
  Overlay& operator=(const Overlay&) = delete;

  const std::filesystem::path& dir() const;
  // Distinguishes this mount from a later one at the same directory (journal State()).
  const std::string& instance() const;
  // The FUSE workers' thread name ("fl-io-fuse-" and four characters of this mount's own), as
  // `ps -L` shows them.
  const std::string& worker_thread_name() const;

  // Arms a rule at once, without remounting; returns it (its id names it for Disarm). Cached
  // pages and attributes of the files it matches are dropped so it takes effect immediately.
  std::shared_ptr<Rule> Arm(RuleSpec spec);
  // False if no such rule is armed (idempotent revert).
  bool Disarm(uint64_t rule_id);
  std::vector<std::shared_ptr<Rule>> Rules() const;

  // The crash model (crash.h). Crash() kills every process using the overlay and rolls the
  // files that lose-unsynced rules track back to their last sync; returns false if a crash was
  // already under way or it did not finish within `wait`.
  bool Crash(std::chrono::milliseconds wait = std::chrono::seconds(15));
  struct CrashStats {
    int64_t crashes = 0;
    std::string last;              // what the last crash did, in words
    std::vector<int> last_killed;  // the pids the last crash SIGKILLed
    uint64_t unsynced_bytes = 0;   // pre-images and recorded writes held now
    bool crashing = false;
  };
  CrashStats Crashes() const;

  // How the thread that sends delayed replies is scheduled (SCHED_FIFO, or the fallback and
  // why), and how late it sent them across every rule. Each rule counts its own too.
  const sys::ThreadScheduling& ReleaseScheduling() const;
  // How the FUSE workers are scheduled now (Options::workers), with the mode in `detail`.
  sys::ThreadScheduling WorkerScheduling() const;
  const Lateness& ReleaseLateness() const;

  // Internals (the FUSE callbacks live in overlay.cc).
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// "ordinary", "while-delaying", "realtime" (the faultline-overlay --workers values) and back.
std::string_view WorkersName(Overlay::Options::Workers w);
std::optional<Overlay::Options::Workers> ParseWorkers(std::string_view name);

// A faultline FUSE mount found in /proc/self/mountinfo.
struct MountEntry {
  std::string mount_point;
  unsigned major = 0, minor = 0;  // the connection's device, names it in fusectl
};
std::vector<MountEntry> FaultlineMounts();

// Lazily unmounts (umount2 MNT_DETACH) every dead faultline mount (its daemon is gone: a crashed
// agent leaves "Transport endpoint is not connected" behind) that is not in `keep` and lies
// under `under` (empty: anywhere), so the directory underneath is usable again. Mounts that a
// live process still serves are left alone. Returns what it did.
std::vector<std::string> SweepStaleMounts(const std::vector<std::string>& keep = {},
                                          const std::string& under = "");

// The faultline mount at exactly `dir` (the top one when stacked), if any.
std::optional<MountEntry> FindFaultlineMount(const std::string& dir);
// True while some process serves the mount: statfs is never answered from the kernel's caches,
// so it reaches the daemon if there is one (a dead one leaves ENOTCONN).
bool MountServed(const std::string& mount_point);
// Aborts the mount's FUSE connection (nothing waits on it any more) and detaches it lazily.
void DetachMount(const MountEntry& mount);

}  // namespace faultline::faults::io
