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
// With a rule's `names`, directory entries follow POSIX, not one filesystem's habits: a create,
// rename, unlink, mkdir or rmdir under a tracked path is durable once every directory it changed
// has been fsynced (fsync of the file itself does not make its name durable); a crash undoes the
// rest, newest first (NamespaceLog). ext4 usually commits such changes with the next journal
// commit, other filesystems do not; a program that needs its names durable syncs the directory.
// Without it a file created since keeps existing, at its synced size (0 if never synced).
//
// Not modelled: syncfs and sync_file_range (the FUSE protocol does not carry them), hard links
// made while armed (kept), and the kernel page cache of processes outside the overlay.

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

// Directory changes under tracked paths since their directories' last fsync. Before an entry is
// replaced or removed, its inode is kept under a hidden name in the same directory (a hard link:
// same filesystem, no copy), so the undo can put it back. Thread-safe.
class NamespaceLog {
 public:
  // `instance` makes the hidden names of this overlay unique (several may share a directory).
  explicit NamespaceLog(std::string instance) : hidden_prefix_(HiddenPrefix() + instance + "-") {}
  NamespaceLog(const NamespaceLog&) = delete;
  NamespaceLog& operator=(const NamespaceLog&) = delete;
  ~NamespaceLog();

  // A directory as the log holds it: an fd of its own (the overlay's may be closed on forget),
  // its identity, and the kernel's inode number for it (to drop cached names after an undo).
  struct Dir {
    int path_fd = -1;  // borrowed for the call; the log dups it
    dev_t dev = 0;
    ino_t ino = 0;
    uint64_t fuse_ino = 0;
  };

  // Before `name` in `dir`, an existing entry that is not a directory (the caller has stat'ed
  // it; an empty directory is made again by the undo instead), goes away (unlink, rename over
  // it): keeps its inode under a hidden name and returns that name, "" if the link failed.
  // Call Removed/Renamed after the op, or Drop if it failed.
  std::string Keep(const Dir& dir, const std::string& name);
  void Drop(const Dir& dir, const std::string& kept);

  void Created(const Dir& dir, const std::string& name, bool is_dir, mode_t mode);
  void Removed(const Dir& dir, const std::string& name, const std::string& kept, bool was_dir,
               mode_t mode);
  void Renamed(const Dir& from, const std::string& from_name, const Dir& to,
               const std::string& to_name, const std::string& kept, bool replaced_dir,
               mode_t replaced_mode);
  // fsync of a directory: what changed in it is durable.
  void Synced(dev_t dev, ino_t ino);

  struct UndoResult {
    int entries = 0;
    std::vector<std::pair<uint64_t, std::string>> names;  // (parent fuse ino, name) changed
    std::vector<std::string> errors;
  };
  // Undoes every change not yet durable, newest first. The log is empty afterwards.
  UndoResult Undo();
  // Forgets everything (the last tracking rule was disarmed): the changes stay, the kept
  // inodes are unlinked.
  void Clear();
  size_t size() const;

  // Names of kept inodes start with this; the overlay hides them from lookups and listings.
  static std::string HiddenPrefix() { return ".faultline-undo-"; }

 private:
  struct OwnDir {
    int fd = -1;  // O_PATH dup, closed when no entry uses it
    dev_t dev = 0;
    ino_t ino = 0;
    uint64_t fuse_ino = 0;
  };
  enum class Kind { kCreate, kRemove, kRename };
  struct Entry {
    Kind kind;
    std::shared_ptr<OwnDir> dir, to;  // to: kRename's target directory
    std::string name, to_name, kept;  // kept: hidden name in `dir` (kRemove) or `to` (kRename)
    bool is_dir = false;              // kCreate: made a directory; kRemove/kRename: removed one
    mode_t mode = 0;
    std::set<std::pair<dev_t, ino_t>> unsynced;  // directories still to be synced
  };
  std::shared_ptr<OwnDir> DirLocked(const Dir& d);
  void UnlinkKeptLocked(const Entry& e);

  std::string hidden_prefix_;
  mutable std::mutex mu_;
  uint64_t next_ = 0;
  std::vector<Entry> entries_;
  std::map<std::pair<dev_t, ino_t>, std::weak_ptr<OwnDir>> dirs_;
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
