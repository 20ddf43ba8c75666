#pragma once

// The overlay's crash model: what a power cut or kernel crash does to data the kernel accepted.
//
// Writes go through to the real file as they happen (reads stay plain passthrough); what the
// model keeps is an undo log: before a tracked write lands, the bytes it overwrites below the
// file's size at its last sync are saved once. A sync (fsync/fdatasync) makes the file's
// current content durable and forgets its log. A crash kills the processes using the overlay
// first (so nothing reads in between), then puts every tracked file back to its content and
// size at its last sync, then re-applies what the tear chose to persist.
//
// Not modelled: directory entries (a file created since the last fsync of its directory keeps
// existing, at its synced size: 0 if it was never synced), syncfs and sync_file_range (the FUSE
// protocol does not carry them), and the kernel page cache of processes outside the overlay.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace faultline::faults::io {

// One write that a tear may let persist after the rollback.
struct PendingWrite {
  uint64_t key_dev = 0, key_ino = 0;
  off_t offset = 0;
  std::string data;
};

// Undo log of every tracked file since its last sync. Thread-safe.
class UnsyncedLog {
 public:
  // `limit`: bytes of saved pre-images and recorded writes held at most.
  explicit UnsyncedLog(uint64_t limit) : limit_(limit) {}
  UnsyncedLog(const UnsyncedLog&) = delete;
  UnsyncedLog& operator=(const UnsyncedLog&) = delete;
  ~UnsyncedLog();

  void set_limit(uint64_t limit);

  // Before bytes [off, off+len) of the file are overwritten (write, fallocate punch or zero,
  // truncate down: len to the old end). `path_fd` is an O_PATH fd of the real file, `fuse_ino`
  // its kernel inode number (for cache invalidation after a rollback). With `record`, the
  // write's own data is kept too (torn-sequence re-applies chosen writes). Returns false,
  // saving nothing, when the log would grow past its limit.
  bool BeforeChange(dev_t dev, ino_t ino, int path_fd, uint64_t fuse_ino, off_t off, size_t len);
  bool Record(dev_t dev, ino_t ino, off_t off, const char* data, size_t len);
  // The file's current content is durable: forget its log.
  void Synced(dev_t dev, ino_t ino);
  // Writes recorded for the file since its last sync (torn-sequence).
  std::vector<PendingWrite> Recorded(dev_t dev, ino_t ino) const;

  struct RollbackResult {
    int files = 0;
    uint64_t bytes_restored = 0;   // pre-image bytes written back
    uint64_t bytes_truncated = 0;  // bytes past the synced size cut off
    std::vector<uint64_t> fuse_inos;
    std::vector<std::string> errors;
  };
  // Every tracked file back to its last synced content and size; then `persist` written (what a
  // tear let reach the disk). The log is empty afterwards.
  RollbackResult Rollback(const std::vector<PendingWrite>& persist);

  // Forgets everything without touching a file (the last tracking rule was disarmed).
  void Clear();

  uint64_t held() const;
  size_t files() const;

 private:
  struct File {
    int fd = -1;  // O_RDWR on the real file, opened at first tracking
    uint64_t fuse_ino = 0;
    off_t synced_size = 0;
    std::map<off_t, std::string> saved;  // non-overlapping pre-images below synced_size
    std::vector<PendingWrite> writes;    // recorded writes in arrival order
  };
  File* GetLocked(dev_t dev, ino_t ino, int path_fd, uint64_t fuse_ino);
  static void Close(File& f);

  struct KeyHash {
    size_t operator()(const std::pair<dev_t, ino_t>& k) const {
      return std::hash<uint64_t>()(k.second * 0x9e3779b97f4a7c15ULL ^ k.first);
    }
  };
  mutable std::mutex mu_;
  uint64_t limit_;
  uint64_t held_ = 0;
  std::unordered_map<std::pair<dev_t, ino_t>, File, KeyHash> files_;
};

// The processes a crash ends: the process group of `trigger_pid` (the caller of the op that
// crashed, 0 for none) and every process holding a file or its cwd under `mount`, never this
// process. A group is killed whole (kill(-pgid)) unless it is this process's own group, where
// only the process is. Returns the pids signalled.
std::vector<pid_t> KillUsers(const std::string& mount, pid_t trigger_pid);
// Every process but this one (and `except`) holding a file, its cwd or its root under `mount`.
std::vector<pid_t> MountUsers(const std::string& mount, const std::set<pid_t>& except = {});
// True while `pid` exists and is not a zombie.
bool Running(pid_t pid);
// Waits until none of `pids` runs any more (gone or a zombie); false after `timeout_ms`.
bool WaitGone(const std::vector<pid_t>& pids, int timeout_ms);

}  // namespace faultline::faults::io
