#include "faults/io/crash.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <system_error>
#include <thread>

namespace faultline::faults::io {

UnsyncedLog::~UnsyncedLog() {
  for (auto& [k, f] : files_) Close(f);
}

void UnsyncedLog::Close(File& f) {
  if (f.fd >= 0) ::close(f.fd);
  f.fd = -1;
}

void UnsyncedLog::set_limit(uint64_t limit) {
  std::lock_guard lock(mu_);
  limit_ = limit;
}

UnsyncedLog::File* UnsyncedLog::GetLocked(dev_t dev, ino_t ino, int path_fd, uint64_t fuse_ino) {
  auto key = std::make_pair(dev, ino);
  auto it = files_.find(key);
  if (it != files_.end()) return &it->second;
  // Its own read-write fd: the caller's may be write-only or append-only, and the file must
  // stay reachable for the rollback even if it is closed, renamed or unlinked meanwhile.
  std::string proc = "/proc/self/fd/" + std::to_string(path_fd);
  int fd = ::open(proc.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return nullptr;
  struct stat st;
  if (::fstat(fd, &st) < 0) {
    ::close(fd);
    return nullptr;
  }
  File f;
  f.fd = fd;
  f.fuse_ino = fuse_ino;
  f.synced_size = st.st_size;
  return &files_.emplace(key, std::move(f)).first->second;
}

bool UnsyncedLog::BeforeChange(dev_t dev, ino_t ino, int path_fd, uint64_t fuse_ino, off_t off,
                               size_t len) {
  std::lock_guard lock(mu_);
  File* f = GetLocked(dev, ino, path_fd, fuse_ino);
  if (f == nullptr) return false;
  off_t end = std::min<off_t>(off + static_cast<off_t>(len), f->synced_size);
  if (off >= end) return true;  // all past the synced end: the rollback truncates it away
  // The gaps of [off, end) that no earlier pre-image covers: only the oldest pre-image of a
  // byte is its synced value.
  std::vector<std::pair<off_t, off_t>> gaps;
  off_t at = off;
  auto it = f->saved.upper_bound(off);
  if (it != f->saved.begin()) {
    auto prev = std::prev(it);
    at = std::max<off_t>(at, prev->first + static_cast<off_t>(prev->second.size()));
  }
  for (; at < end; ++it) {
    off_t next = it == f->saved.end() ? end : std::min<off_t>(it->first, end);
    if (next > at) gaps.emplace_back(at, next);
    if (it == f->saved.end()) break;
    at = std::max<off_t>(at, it->first + static_cast<off_t>(it->second.size()));
  }
  uint64_t need = 0;
  for (auto [a, b] : gaps) need += static_cast<uint64_t>(b - a);
  if (held_ + need > limit_) return false;
  for (auto [a, b] : gaps) {
    std::string buf(static_cast<size_t>(b - a), '\0');
    ssize_t n = ::pread(f->fd, buf.data(), buf.size(), a);
    if (n < 0) return false;
    buf.resize(static_cast<size_t>(n));  // a hole past a concurrent truncate reads short
    held_ += buf.size();
    f->saved.emplace(a, std::move(buf));
  }
  return true;
}

bool UnsyncedLog::Record(dev_t dev, ino_t ino, off_t off, const char* data, size_t len) {
  std::lock_guard lock(mu_);
  auto it = files_.find(std::make_pair(dev, ino));
  if (it == files_.end()) return false;
  if (held_ + len > limit_) return false;
  held_ += len;
  it->second.writes.push_back(PendingWrite{dev, ino, off, std::string(data, len)});
  return true;
}

void UnsyncedLog::Synced(dev_t dev, ino_t ino) {
  std::lock_guard lock(mu_);
  auto it = files_.find(std::make_pair(dev, ino));
  if (it == files_.end()) return;
  for (auto& [o, b] : it->second.saved) held_ -= b.size();
  for (auto& w : it->second.writes) held_ -= w.data.size();
  Close(it->second);
  files_.erase(it);
}

std::vector<PendingWrite> UnsyncedLog::Recorded(dev_t dev, ino_t ino) const {
  std::lock_guard lock(mu_);
  auto it = files_.find(std::make_pair(dev, ino));
  return it == files_.end() ? std::vector<PendingWrite>{} : it->second.writes;
}

UnsyncedLog::RollbackResult UnsyncedLog::Rollback(const std::vector<PendingWrite>& persist) {
  std::lock_guard lock(mu_);
  RollbackResult r;
  std::map<std::pair<dev_t, ino_t>, int> fds;
  for (auto& [key, f] : files_) {
    ++r.files;
    r.fuse_inos.push_back(f.fuse_ino);
    struct stat st;
    if (::fstat(f.fd, &st) == 0 && st.st_size > f.synced_size) {
      r.bytes_truncated += static_cast<uint64_t>(st.st_size - f.synced_size);
    }
    // Size first (cuts what grew, re-extends what shrank with a hole), then the old bytes.
    if (::ftruncate(f.fd, f.synced_size) < 0) {
      r.errors.push_back("truncate: " + std::string(strerror(errno)));
    }
    for (auto& [off, bytes] : f.saved) {
      if (::pwrite(f.fd, bytes.data(), bytes.size(), off) != static_cast<ssize_t>(bytes.size())) {
        r.errors.push_back("restore: " + std::string(strerror(errno)));
      }
      r.bytes_restored += bytes.size();
    }
    fds[key] = f.fd;
  }
  for (const auto& w : persist) {
    auto it =
        fds.find(std::make_pair(static_cast<dev_t>(w.key_dev), static_cast<ino_t>(w.key_ino)));
    if (it == fds.end()) continue;
    if (::pwrite(it->second, w.data.data(), w.data.size(), w.offset) < 0) {
      r.errors.push_back("persist: " + std::string(strerror(errno)));
    }
  }
  // The rolled-back state is what the disk holds now: make it so, then start over from it.
  for (auto& [key, f] : files_) {
    ::fsync(f.fd);
    Close(f);
  }
  files_.clear();
  held_ = 0;
  return r;
}

void UnsyncedLog::Clear() {
  std::lock_guard lock(mu_);
  for (auto& [k, f] : files_) Close(f);
  files_.clear();
  held_ = 0;
}

uint64_t UnsyncedLog::held() const {
  std::lock_guard lock(mu_);
  return held_;
}

size_t UnsyncedLog::files() const {
  std::lock_guard lock(mu_);
  return files_.size();
}

namespace {

bool UnderMount(const std::string& target, const std::string& mount) {
  return target == mount ||
         (target.size() > mount.size() && target.compare(0, mount.size(), mount) == 0 &&
          target[mount.size()] == '/');
}

// True if the process has a file, its cwd or its root under `mount`.
bool UsesMount(const std::string& pid, const std::string& mount) {
  std::string base = "/proc/" + pid;
  char buf[4096];
  for (const char* link : {"/cwd", "/root"}) {
    ssize_t n = ::readlink((base + link).c_str(), buf, sizeof(buf));
    if (n > 0 && UnderMount(std::string(buf, static_cast<size_t>(n)), mount)) return true;
  }
  DIR* d = ::opendir((base + "/fd").c_str());
  if (d == nullptr) return false;
  bool found = false;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    ssize_t n = ::readlinkat(::dirfd(d), e->d_name, buf, sizeof(buf));
    if (n > 0 && UnderMount(std::string(buf, static_cast<size_t>(n)), mount)) {
      found = true;
      break;
    }
  }
  ::closedir(d);
  return found;
}

char State(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  size_t close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ? 0 : line[close + 2];
}

}  // namespace

std::vector<pid_t> MountUsers(const std::string& mount, const std::set<pid_t>& except) {
  pid_t self = ::getpid();
  std::vector<pid_t> out;
  if (DIR* d = ::opendir("/proc")) {
    while (struct dirent* e = ::readdir(d)) {
      char* end = nullptr;
      long pid = strtol(e->d_name, &end, 10);
      if (end == e->d_name || *end != 0 || pid == self) continue;
      if (except.contains(static_cast<pid_t>(pid))) continue;
      if (UsesMount(e->d_name, mount)) out.push_back(static_cast<pid_t>(pid));
    }
    ::closedir(d);
  }
  return out;
}

std::vector<pid_t> KillUsers(const std::string& mount, pid_t trigger_pid) {
  pid_t self = ::getpid();
  pid_t own_group = ::getpgrp();
  std::set<pid_t> pids;
  if (trigger_pid > 0 && trigger_pid != self) pids.insert(trigger_pid);
  for (pid_t pid : MountUsers(mount)) pids.insert(pid);
  std::vector<pid_t> out;
  std::set<pid_t> groups;
  for (pid_t pid : pids) {
    pid_t pgid = ::getpgid(pid);
    if (pgid > 1 && pgid != own_group) {
      if (groups.insert(pgid).second) ::kill(-pgid, SIGKILL);
    } else {
      ::kill(pid, SIGKILL);
    }
    out.push_back(pid);
  }
  return out;
}

bool Running(pid_t pid) {
  char s = State(pid);
  return s != 0 && s != 'Z' && s != 'X';
}

bool WaitGone(const std::vector<pid_t>& pids, int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    bool any = false;
    for (pid_t pid : pids) any |= Running(pid);
    if (!any) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

NamespaceLog::~NamespaceLog() { Clear(); }

std::shared_ptr<NamespaceLog::OwnDir> NamespaceLog::DirLocked(const Dir& d) {
  auto key = std::make_pair(d.dev, d.ino);
  if (auto it = dirs_.find(key); it != dirs_.end()) {
    if (auto own = it->second.lock()) return own;
  }
  int fd = ::fcntl(d.path_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  // The custom deleter closes the dup once the last entry that needs the directory is gone.
  std::shared_ptr<OwnDir> own(new OwnDir{fd, d.dev, d.ino, d.fuse_ino}, [](OwnDir* o) {
    ::close(o->fd);
    delete o;
  });
  dirs_[key] = own;
  return own;
}

std::string NamespaceLog::Keep(const Dir& dir, const std::string& name) {
  std::string kept;
  {
    std::lock_guard lock(mu_);
    kept = hidden_prefix_ + std::to_string(next_++);
  }
  if (::linkat(dir.path_fd, name.c_str(), dir.path_fd, kept.c_str(), 0) < 0) return "";
  return kept;
}

void NamespaceLog::Drop(const Dir& dir, const std::string& kept) {
  if (!kept.empty()) ::unlinkat(dir.path_fd, kept.c_str(), 0);
}

void NamespaceLog::Created(const Dir& dir, const std::string& name, bool is_dir, mode_t mode) {
  std::lock_guard lock(mu_);
  auto d = DirLocked(dir);
  if (!d) return;
  entries_.push_back({.kind = Kind::kCreate,
                      .dir = d,
                      .name = name,
                      .is_dir = is_dir,
                      .mode = mode,
                      .unsynced = {{dir.dev, dir.ino}}});
}

void NamespaceLog::Removed(const Dir& dir, const std::string& name, const std::string& kept,
                           bool was_dir, mode_t mode) {
  std::lock_guard lock(mu_);
  auto d = DirLocked(dir);
  if (!d) return Drop(dir, kept);
  entries_.push_back({.kind = Kind::kRemove,
                      .dir = d,
                      .name = name,
                      .kept = kept,
                      .is_dir = was_dir,
                      .mode = mode,
                      .unsynced = {{dir.dev, dir.ino}}});
}

void NamespaceLog::Renamed(const Dir& from, const std::string& from_name, const Dir& to,
                           const std::string& to_name, const std::string& kept, bool replaced_dir,
                           mode_t replaced_mode) {
  std::lock_guard lock(mu_);
  auto f = DirLocked(from);
  auto t = DirLocked(to);
  if (!f || !t) return Drop(to, kept);
  entries_.push_back({.kind = Kind::kRename,
                      .dir = f,
                      .to = t,
                      .name = from_name,
                      .to_name = to_name,
                      .kept = kept,
                      .is_dir = replaced_dir,
                      .mode = replaced_mode,
                      .unsynced = {{from.dev, from.ino}, {to.dev, to.ino}}});
}

void NamespaceLog::UnlinkKeptLocked(const Entry& e) {
  if (e.kept.empty()) return;
  const auto& where = e.kind == Kind::kRename ? e.to : e.dir;
  ::unlinkat(where->fd, e.kept.c_str(), 0);
}

void NamespaceLog::Synced(dev_t dev, ino_t ino) {
  std::lock_guard lock(mu_);
  auto key = std::make_pair(dev, ino);
  std::vector<Entry> left;
  for (auto& e : entries_) {
    e.unsynced.erase(key);
    if (e.unsynced.empty()) {
      UnlinkKeptLocked(e);  // the removal is durable: nothing will bring the inode back
    } else {
      left.push_back(std::move(e));
    }
  }
  entries_ = std::move(left);
}

NamespaceLog::UndoResult NamespaceLog::Undo() {
  std::lock_guard lock(mu_);
  UndoResult r;
  auto fail = [&](const std::string& what) {
    r.errors.push_back(what + ": " + std::system_category().message(errno));
  };
  // What stood at `name` in `fd` before it went: the kept inode, or an empty directory.
  auto put_back = [&](int fd, const Entry& e, const std::string& name) {
    if (!e.kept.empty()) {
      if (::renameat2(fd, e.kept.c_str(), fd, name.c_str(), RENAME_NOREPLACE) < 0) {
        fail("put back " + name);
        ::unlinkat(fd, e.kept.c_str(), 0);
      }
    } else if (e.is_dir && ::mkdirat(fd, name.c_str(), e.mode & 07777) < 0 && errno != EEXIST) {
      fail("put back directory " + name);
    }
  };
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    Entry& e = *it;
    ++r.entries;
    int dfd = e.dir->fd;
    switch (e.kind) {
      case Kind::kCreate:
        if (::unlinkat(dfd, e.name.c_str(), e.is_dir ? AT_REMOVEDIR : 0) < 0 && errno != ENOENT) {
          fail("undo create of " + e.name);
        }
        r.names.emplace_back(e.dir->fuse_ino, e.name);
        break;
      case Kind::kRemove:
        put_back(dfd, e, e.name);
        r.names.emplace_back(e.dir->fuse_ino, e.name);
        break;
      case Kind::kRename: {
        int tfd = e.to->fd;
        if (::renameat2(tfd, e.to_name.c_str(), dfd, e.name.c_str(), RENAME_NOREPLACE) < 0) {
          fail("undo rename of " + e.name + " to " + e.to_name);
        }
        put_back(tfd, e, e.to_name);
        r.names.emplace_back(e.dir->fuse_ino, e.name);
        r.names.emplace_back(e.to->fuse_ino, e.to_name);
        break;
      }
    }
  }
  entries_.clear();
  return r;
}

void NamespaceLog::Clear() {
  std::lock_guard lock(mu_);
  for (const auto& e : entries_) UnlinkKeptLocked(e);
  entries_.clear();
}

size_t NamespaceLog::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace faultline::faults::io
