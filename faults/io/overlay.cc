#define FUSE_USE_VERSION 312
#include "faults/io/overlay.h"

#include <dirent.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "faults/core/errors.h"
#include "faults/io/crash.h"
#include "faults/io/glob.h"
#include "faults/io/release_queue.h"
#include "faults/sys/mountinfo.h"
#include "faults/sys/realtime.h"
#include "faults/sys/unique_fd.h"

namespace faultline::faults::io {
namespace {

// Entries and attributes may be cached by the kernel for a long time: the directory underneath
// is hidden by the mount, so every change to it goes through this overlay and the kernel sees
// it. Rules that need fresh attributes (attr) get a timeout of 0 and an explicit invalidation.
constexpr double kCacheTimeout = 86400.0;

constexpr uint64_t kDirectBit = uint64_t{1} << 32;
// Real-time FUSE workers run below the release thread, which must always be able to preempt
// them to send a reply on time.
constexpr int kWorkerPriority = sys::kReleasePriority / 2;

struct Inode {
  int fd = -1;  // O_PATH
  dev_t dev = 0;
  ino_t ino = 0;
  mode_t type = 0;
  uint64_t nlookup = 0;  // guarded by the table mutex
  // Last known name and parent, for rule path globs. Only read while a rule is armed.
  std::mutex name_mu;
  Inode* parent = nullptr;
  std::string name;
};

struct DirHandle {
  DIR* dp = nullptr;
  off_t offset = 0;
  struct dirent* entry = nullptr;
};

struct KeyHash {
  size_t operator()(const std::pair<dev_t, ino_t>& k) const {
    return std::hash<uint64_t>()(k.second * 0x9e3779b97f4a7c15ULL ^ k.first);
  }
};

std::string ProcPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

std::string RandomToken() {
  std::random_device rd;
  std::ostringstream os;
  os << std::hex << rd() << rd();
  return os.str();
}

void AbortConnection(unsigned major, unsigned minor) {
  // fusectl names connections by the kernel's dev_t encoding; faultline mounts are anonymous
  // devices (major 0), where that is just the minor number.
  if (major != 0) return;
  const char* ctl = "/sys/fs/fuse/connections";
  std::string abort_path = std::string(ctl) + "/" + std::to_string(minor) + "/abort";
  bool mounted_here = false;
  struct stat st;
  if (::stat(abort_path.c_str(), &st) != 0 && ::access(ctl, F_OK) == 0) {
    // Not mounted on this host (no systemd): mount it, it is the only way to abort — and
    // unmount it again below, so the host is left as it was.
    mounted_here = ::mount("fusectl", ctl, "fusectl", 0, nullptr) == 0;
  }
  if (sys::UniqueFd fd(::open(abort_path.c_str(), O_WRONLY | O_CLOEXEC)); fd) {
    (void)!::write(fd.get(), "1", 1);
  }
  if (mounted_here) ::umount2(ctl, MNT_DETACH);
}

}  // namespace

struct Overlay::Impl {
  std::filesystem::path dir;
  bool xattr = false;
  std::string instance = RandomToken();
  Inode root;
  int proc_self_fd = -1;
  mode_t umask_bits = 022;
  fuse_session* se = nullptr;
  fuse_loop_config* loop_cfg = nullptr;
  std::thread loop;
  std::mutex loop_mu;
  std::condition_variable loop_cv;
  bool loop_done = false;
  MountEntry mount_entry;
  std::unique_ptr<ReleaseQueue> delays;  // made first thing in the constructor

  std::mutex table_mu;
  std::unordered_map<std::pair<dev_t, ino_t>, std::unique_ptr<Inode>, KeyHash> inodes;

  // Rules: writers (Arm/Disarm) serialise on rules_mu and publish a new immutable set;
  // FUSE workers only load the pointer. `armed` lets the idle path skip even that.
  std::mutex rules_mu;
  std::atomic<std::shared_ptr<const RuleSet>> rules{std::make_shared<const RuleSet>()};
  std::atomic<bool> armed{false};
  uint64_t next_rule_id = 1;

  // Crash model (crash.h). `tracking`: a lose-unsynced or torn-sequence rule is armed, or the
  // log still holds something; `crashing`: between the kill of the users and the end of the
  // rollback, when data ops fail with EIO and opens wait.
  UnsyncedLog unsynced{64ull << 20};
  NamespaceLog names{instance};
  std::atomic<bool> tracking{false};
  std::atomic<bool> crashing{false};
  std::atomic<bool> crash_claimed{false};  // one crash at a time (the same power cut)
  std::atomic<bool> closing{false};        // the destructor runs: timers must not crash any more
  std::mutex crash_mu;
  std::condition_variable crash_cv;
  std::vector<std::thread> crash_threads;
  int64_t crashes = 0;
  std::string last_crash;
  std::vector<int> last_killed;

  // FUSE workers (Options::workers). libfuse makes them itself and gives no hook, so they are
  // found by their thread name, unique to this overlay (`worker_name`, inherited from the loop
  // thread), and moved between policies as delaying rules come and go. They never exit while
  // the session runs (idle workers are kept), so a listed tid stays theirs. A worker spawned
  // while the set was being moved may carry the old policy: each worker also puts itself on the
  // set's policy at its first request.
  Overlay::Options::Workers worker_mode = Overlay::Options::Workers::kWhileDelaying;
  std::string worker_name;
  mutable std::mutex workers_mu;
  bool workers_realtime = false;  // the policy the set is on (or was asked for, if refused)
  std::string workers_error;      // why SCHED_FIFO was refused, when it was

  void Enrol() {
    thread_local const Impl* enrolled = nullptr;
    if (enrolled == this) return;
    enrolled = this;
    std::lock_guard lock(workers_mu);
    SetPolicy(static_cast<pid_t>(::gettid()), workers_realtime);
  }
  // Under workers_mu.
  void SetPolicy(pid_t tid, bool realtime) {
    sched_param p{};
    p.sched_priority = realtime ? kWorkerPriority : 0;
    if (::sched_setscheduler(tid, realtime ? SCHED_FIFO : SCHED_OTHER, &p) != 0 && realtime) {
      workers_error = strerror(errno);
    }
  }
  std::vector<pid_t> WorkerTids() const {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec)) {
      std::ifstream comm(e.path() / "comm");
      std::string name;
      std::getline(comm, name);
      if (name == worker_name) out.push_back(static_cast<pid_t>(std::stoi(e.path().filename())));
    }
    return out;
  }
  void SetWorkersRealtime(bool realtime) {
    std::lock_guard lock(workers_mu);
    if (realtime == workers_realtime) return;
    workers_realtime = realtime;
    workers_error.clear();
    for (pid_t tid : WorkerTids()) SetPolicy(tid, realtime);
  }

  Inode* Get(fuse_ino_t ino) {
    return ino == FUSE_ROOT_ID ? &root : reinterpret_cast<Inode*>(static_cast<uintptr_t>(ino));
  }

  std::string PathOf(Inode* in, const char* child = nullptr) {
    std::vector<std::string> parts;
    if (child) parts.emplace_back(child);
    for (int depth = 0; in && in != &root && depth < 4096; ++depth) {
      std::lock_guard lock(in->name_mu);
      parts.push_back(in->name);
      in = in->parent;
    }
    std::string out;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      if (!out.empty()) out += '/';
      out += *it;
    }
    return out;
  }

  Decision Check(Method m, Inode* in, const char* child = nullptr) {
    Enrol();
    if (!armed.load(std::memory_order_relaxed)) return {};
    auto set = rules.load(std::memory_order_acquire);
    if ((set->methods & Bit(m)) == 0) return {};
    Decision d = Decide(*set, m, PathOf(in, child));
    if (d.delay.count() > 0) d.rules = std::move(set);
    return d;
  }

  template <class F>
  void Respond(const Decision& d, F&& reply) {
    if (d.delay.count() <= 0) {
      reply();
    } else {
      std::array<Lateness*, ReleaseQueue::kMaxLateness> stats{};
      for (size_t i = 0; i < stats.size() && i < d.delayed_by.size(); ++i) {
        if (d.delayed_by[i] != nullptr) stats[i] = &d.delayed_by[i]->lateness();
      }
      delays->Add(sys::MonotonicNs() + d.delay.count(),
                  std::function<void()>(std::forward<F>(reply)), stats, d.rules);
    }
  }
  void ReplyErr(fuse_req_t req, const Decision& d, int err) {
    Respond(d, [req, err] { fuse_reply_err(req, err); });
  }

  void SetName(Inode* in, Inode* parent, const char* name) {
    std::lock_guard lock(in->name_mu);
    if (in->parent != parent || in->name != name) {
      in->parent = parent;
      in->name = name;
    }
  }

  // Looks `name` up under `parent`, adding one kernel reference to its inode.
  int DoLookup(Inode* parent, const char* name, fuse_entry_param* e) {
    memset(e, 0, sizeof(*e));
    e->attr_timeout = kCacheTimeout;
    e->entry_timeout = kCacheTimeout;
    int fd = ::openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno;
    if (::fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
      int err = errno;
      ::close(fd);
      return err;
    }
    Inode* in;
    {
      std::lock_guard lock(table_mu);
      auto key = std::make_pair(e->attr.st_dev, e->attr.st_ino);
      if (key.first == root.dev && key.second == root.ino) {
        in = &root;
      } else {
        auto& slot = inodes[key];
        if (!slot) {
          slot = std::make_unique<Inode>();
          slot->fd = fd;
          fd = -1;
          slot->dev = key.first;
          slot->ino = key.second;
          slot->type = e->attr.st_mode & S_IFMT;
        }
        in = slot.get();
      }
      ++in->nlookup;
    }
    if (fd >= 0) ::close(fd);
    if (in != &root) SetName(in, parent, name);
    e->ino = reinterpret_cast<uintptr_t>(in);
    return 0;
  }

  void Forget(Inode* in, uint64_t n) {
    if (in == &root) return;
    std::lock_guard lock(table_mu);
    in->nlookup -= std::min(in->nlookup, n);
    if (in->nlookup == 0) {
      ::close(in->fd);
      inodes.erase(std::make_pair(in->dev, in->ino));
    }
  }

  // Applies fired attr rules to `st`; true if any did (the reply must not be cached then).
  static bool ApplyAttr(const Decision& d, struct stat* st) {
    bool any = false;
    for (auto [rule, n] : d.shaping) {
      if (rule->spec().kind != RuleKind::kAttr) continue;
      const auto& a = rule->spec().attr;
      if (a.size) st->st_size = static_cast<off_t>(*a.size);
      if (a.mode) st->st_mode = (st->st_mode & S_IFMT) | (*a.mode & 07777);
      if (a.mtime) st->st_mtim = {*a.mtime, 0};
      if (a.atime) st->st_atim = {*a.atime, 0};
      if (a.ctime) st->st_ctim = {*a.ctime, 0};
      if (a.uid) st->st_uid = *a.uid;
      if (a.gid) st->st_gid = *a.gid;
      if (a.nlink) st->st_nlink = *a.nlink;
      rule->CountEffect(1);
      any = true;
    }
    return any;
  }

  bool AttrRulesArmed() {
    if (!armed.load(std::memory_order_relaxed)) return false;
    auto set = rules.load(std::memory_order_acquire);
    return (set->methods & (Bit(Method::kGetattr) | Bit(Method::kLookup))) != 0;
  }

  // Cache policy of one open. Idle: keep_cache, so a file's pages survive close/open (etcd's
  // bbolt re-reads its db through mmap; dropping its cache at every open would cost real IO).
  // With a rule on this file's reads, the cache is dropped at open so reads reach the daemon;
  // with a short or corrupt rule, the open is direct_io, because only direct_io lets a short
  // count reach the application and keeps corrupted bytes out of the page cache (so recovery
  // is immediate). direct_io also forbids shared mmap of that file on this libfuse (3.14 cannot
  // negotiate FUSE_DIRECT_IO_ALLOW_MMAP): scope such rules with a path glob.
  void OpenPolicy(Inode* in, fuse_file_info* fi, int fd) {
    fi->keep_cache = 1;
    fi->fh = static_cast<uint64_t>(fd);
    if (!armed.load(std::memory_order_relaxed)) return;
    auto set = rules.load(std::memory_order_acquire);
    if ((set->methods & (Bit(Method::kRead) | Bit(Method::kWrite))) == 0) return;
    std::string path = PathOf(in);
    for (const auto& r : set->rules) {
      bool reads = r->Matches(Method::kRead, path);
      bool writes = r->Matches(Method::kWrite, path);
      if (reads) fi->keep_cache = 0;
      auto kind = r->spec().kind;
      if ((reads || writes) && (kind == RuleKind::kShort || kind == RuleKind::kCorrupt)) {
        fi->keep_cache = 0;
        fi->direct_io = 1;
        fi->fh |= kDirectBit;
      }
    }
  }

  void FixOwnership(fuse_req_t req, int dirfd, const char* name, mode_t mode, bool is_link) {
    const fuse_ctx* ctx = fuse_req_ctx(req);
    // The daemon runs as root; files it creates must belong to the process that asked.
    if (ctx->uid != ::geteuid() || ctx->gid != ::getegid()) {
      (void)!::fchownat(dirfd, name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW);
    }
    // The kernel applied the caller's umask already; undo the daemon's own.
    if (!is_link && (mode & umask_bits & 07777) != 0) ::fchmodat(dirfd, name, mode & 07777, 0);
  }

  void InvalidateMatching(const Rule& r) {
    bool data = (r.spec().methods & (Bit(Method::kRead) | Bit(Method::kWrite))) != 0;
    bool attrs = r.spec().kind == RuleKind::kAttr;
    if (!data && !attrs) return;
    std::vector<Inode*> all;
    {
      std::lock_guard lock(table_mu);
      for (auto& [k, v] : inodes) all.push_back(v.get());
    }
    // Inodes may be forgotten while we walk; the kernel answers ENOENT for those, harmless.
    for (Inode* in : all) {
      std::string path;
      {
        std::lock_guard lock(table_mu);
        if (!inodes.count(std::make_pair(in->dev, in->ino))) continue;
        path = PathOf(in);
      }
      if (!GlobMatch(r.spec().path_glob, path)) continue;
      fuse_lowlevel_notify_inval_inode(se, reinterpret_cast<uintptr_t>(in), data ? 0 : -1, 0);
    }
  }

  void Publish(std::vector<std::shared_ptr<Rule>> list) {
    auto set = std::make_shared<RuleSet>();
    bool track = false;
    bool delaying = false;
    uint64_t limit = UINT64_MAX;
    for (auto& r : list) {
      set->methods |= r->spec().methods;
      auto kind = r->spec().kind;
      if (kind == RuleKind::kLatency || r->spec().delay.count() > 0) delaying = true;
      if (kind == RuleKind::kLoseUnsynced || kind == RuleKind::kTornSequence) {
        track = true;
        limit = std::min(limit, r->spec().max_unsynced_bytes);
      }
    }
    // The smallest bound of the armed rules holds; with none armed the log is dropped below.
    unsynced.set_limit(limit);
    set->rules = std::move(list);
    bool any = !set->rules.empty();
    rules.store(std::move(set), std::memory_order_release);
    armed.store(any, std::memory_order_release);
    tracking.store(track, std::memory_order_release);
    if (!track) {
      unsynced.Clear();
      names.Clear();
    }
    if (worker_mode == Overlay::Options::Workers::kWhileDelaying) SetWorkersRealtime(delaying);
  }

  // Opens wait while a crash rolls files back, so a restarted process never reads the state
  // between kill and rollback (its restart policy may start it again at once).
  void WaitCrash() {
    if (!crashing.load(std::memory_order_acquire)) return;
    std::unique_lock lock(crash_mu);
    crash_cv.wait_for(lock, std::chrono::seconds(30), [&] { return !crashing.load(); });
  }

  // The crash: kill the users of the overlay now (on the caller's thread, before the op that
  // caused it is answered), then on a thread of its own wait for them to be gone, roll the
  // tracked files back to their last sync plus whatever `persist` lets through, drop the
  // kernel's cached pages of those files and call the rules' after_crash hooks. False if a
  // crash is already under way (it is the same power cut).
  bool Crash(std::shared_ptr<Rule> cause, pid_t trigger, std::vector<PendingWrite> persist,
             std::string why) {
    bool expected = false;
    if (!crash_claimed.compare_exchange_strong(expected, true)) return false;
    // Kill first: a user that saw its writes fail would react (etcd exits on a WAL error)
    // before the kill, which is not what a power cut looks like. Writes that land between the
    // kill and the victims' end are tracked like any other and rolled back.
    auto pids = KillUsers(dir.string(), trigger);
    crashing.store(true, std::memory_order_release);
    std::lock_guard lock(crash_mu);
    crash_threads.emplace_back([this, cause, pids, persist = std::move(persist), why] {
      // A crash_after timer fires on the real-time release thread, whose policy a thread it
      // starts inherits: the rollback is ordinary work and must not run above the host.
      sys::MakeThreadOrdinary();
      bool gone = WaitGone(pids, 10000);
      auto r = unsynced.Rollback(persist);
      for (uint64_t ino : r.fuse_inos) fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);
      // Names after data: the rollback writes through fds, whatever the files are called.
      auto u = names.Undo();
      for (const auto& [parent, name] : u.names) {
        fuse_lowlevel_notify_inval_entry(se, parent, name.c_str(), name.size());
      }
      r.errors.insert(r.errors.end(), u.errors.begin(), u.errors.end());
      std::vector<std::shared_ptr<Rule>> involved;
      if (cause) involved.push_back(cause);
      for (auto& rule : rules.load()->rules) {
        if (rule->spec().kind == RuleKind::kLoseUnsynced) {
          rule->CountEffect(static_cast<int64_t>(r.bytes_restored + r.bytes_truncated));
          if (rule != cause) involved.push_back(rule);
        }
      }
      std::string what = why + ": killed " + std::to_string(pids.size()) + " process(es)" +
                         (gone ? "" : " (some still running after 10s)") + ", rolled back " +
                         std::to_string(r.files) + " file(s), " + std::to_string(r.bytes_restored) +
                         " bytes restored, " + std::to_string(r.bytes_truncated) + " bytes cut, " +
                         std::to_string(u.entries) + " directory change(s) undone";
      for (auto& e : r.errors) what += "; " + e;
      {
        std::lock_guard done(crash_mu);
        ++crashes;
        last_crash = what;
        last_killed.assign(pids.begin(), pids.end());
        crashing.store(false, std::memory_order_release);
        crash_claimed.store(false, std::memory_order_release);
      }
      crash_cv.notify_all();
      for (auto& rule : involved) {
        if (rule->spec().after_crash) rule->spec().after_crash();
      }
    });
    return true;
  }

  // Whether a tracking rule (lose-unsynced, torn-sequence; with `names` if `need_names`) watches
  // writes of `path`, without counting anything.
  bool TrackingRuleMatches(const std::string& path, bool need_names) {
    auto set = rules.load(std::memory_order_acquire);
    for (auto& r : set->rules) {
      auto kind = r->spec().kind;
      if ((kind == RuleKind::kLoseUnsynced || kind == RuleKind::kTornSequence) &&
          (!need_names || r->spec().names) && r->Matches(Method::kWrite, path)) {
        return true;
      }
    }
    return false;
  }
  bool TracksPath(Inode* in) { return TrackingRuleMatches(PathOf(in), false); }

  bool Tracks(const Decision& d) { return d.track && tracking.load(std::memory_order_acquire); }

  // Whether a directory change of `name` in `parent` is tracked (a rule with `names`).
  bool TracksName(Inode* parent, const char* name) {
    return tracking.load(std::memory_order_acquire) &&
           TrackingRuleMatches(PathOf(parent, name), true);
  }

  NamespaceLog::Dir DirOf(Inode* in) {
    return {in->fd, in->dev, in->ino, in == &root ? FUSE_ROOT_ID : reinterpret_cast<uintptr_t>(in)};
  }

  static bool Hidden(const char* name) {
    static const std::string prefix = NamespaceLog::HiddenPrefix();
    return strncmp(name, prefix.data(), prefix.size()) == 0;
  }

  // Before a tracked change of [off, off+len) in `in`: false if the log is full, after which
  // the overlay crashes at once (the memory bound is reached: said in the crash's reason).
  bool TrackChange(fuse_req_t req, Inode* in, off_t off, size_t len) {
    if (unsynced.BeforeChange(in->dev, in->ino, in->fd, reinterpret_cast<uintptr_t>(in), off,
                              len)) {
      return true;
    }
    std::shared_ptr<Rule> cause;
    for (auto& r : rules.load()->rules) {
      if (r->spec().kind == RuleKind::kLoseUnsynced || r->spec().kind == RuleKind::kTornSequence)
        cause = r;
    }
    Crash(cause, fuse_req_ctx(req)->pid, {},
          "unsynced data reached the rule's max_unsynced_bytes (" +
              std::to_string(unsynced.held()) + " bytes held): crashed early");
    return false;
  }

  std::shared_ptr<Rule> Shared(Rule* r) {
    for (auto& x : rules.load()->rules) {
      if (x.get() == r) return x;
    }
    return nullptr;
  }
};

namespace {

using Impl = Overlay::Impl;
Impl* Self(fuse_req_t req) { return static_cast<Impl*>(fuse_req_userdata(req)); }
int Fd(fuse_file_info* fi) { return static_cast<int>(fi->fh & 0xffffffffu); }
bool Direct(fuse_file_info* fi) { return (fi->fh & kDirectBit) != 0; }

void OpInit(void* userdata, fuse_conn_info* conn) {
  (void)userdata;
  // No splice: replying to reads by splicing from the backing file measured no faster here
  // than pread + writev (bench/io, 256 MiB cold reads), and splicing requests in is slower for
  // the small writes etcd makes. Reads are answered from an fd buffer, which libfuse copies.
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  // No writeback cache: a write must reach the daemon inside the write() call so errno, short
  // and enospc rules fail the syscall that caused them, as a disk would, not a later fsync.
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  // The kernel clears setuid bits itself (the daemon writes as root, which would keep them).
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  // Locks (flock and POSIX) are left to the kernel: every user of the directory goes through
  // this mount, so local locking is exact and costs no round trip.
  conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  // Nothing changes the files underneath behind our back (the mount hides them), so the kernel
  // need not re-check size/mtime to decide whether its cached pages are stale.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Impl* s = Self(req);
  Inode* p = s->Get(parent);
  Decision d = s->Check(Method::kLookup, p, name);
  if (d.err) return s->ReplyErr(req, d, d.err);
  if (Impl::Hidden(name)) return s->ReplyErr(req, d, ENOENT);  // the crash model's kept inodes
  fuse_entry_param e;
  int err = s->DoLookup(p, name, &e);
  if (err) return s->ReplyErr(req, d, err);
  if (Impl::ApplyAttr(d, &e.attr))
    e.attr_timeout = 0;
  else if (s->AttrRulesArmed())
    e.attr_timeout = 0;
  s->Respond(d, [req, e] { fuse_reply_entry(req, &e); });
}

void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Impl* s = Self(req);
  s->Forget(s->Get(ino), nlookup);
  fuse_reply_none(req);
}

void OpForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  Impl* s = Self(req);
  for (size_t i = 0; i < count; ++i) s->Forget(s->Get(forgets[i].ino), forgets[i].nlookup);
  fuse_reply_none(req);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Impl* s = Self(req);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kGetattr, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  struct stat st;
  if (::fstatat(in->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
    return s->ReplyErr(req, d, errno);
  }
  double timeout = kCacheTimeout;
  if (Impl::ApplyAttr(d, &st) || s->AttrRulesArmed()) timeout = 0;
  s->Respond(d, [req, st, timeout] { fuse_reply_attr(req, &st, timeout); });
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int valid, fuse_file_info* fi) {
  Impl* s = Self(req);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kSetattr, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  std::string path = ProcPath(in->fd);
  int res = 0;
  if (valid & FUSE_SET_ATTR_MODE) {
    res = fi ? ::fchmod(Fd(fi), attr->st_mode) : ::chmod(path.c_str(), attr->st_mode);
  }
  if (res == 0 && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
    uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : static_cast<uid_t>(-1);
    gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : static_cast<gid_t>(-1);
    res = ::fchownat(in->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
  }
  if (res == 0 && (valid & FUSE_SET_ATTR_SIZE)) {
    if (s->crashing.load(std::memory_order_acquire)) return s->ReplyErr(req, d, EIO);
    struct stat old;
    if (s->Tracks(d) && ::fstatat(in->fd, "", &old, AT_EMPTY_PATH) == 0) {
      off_t cut = std::min(old.st_size, attr->st_size);
      if (!s->TrackChange(req, in, cut, static_cast<size_t>(old.st_size - cut))) {
        return s->ReplyErr(req, d, EIO);
      }
    }
    res = fi ? ::ftruncate(Fd(fi), attr->st_size) : ::truncate(path.c_str(), attr->st_size);
  }
  if (res == 0 && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
    struct timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    if (valid & FUSE_SET_ATTR_ATIME_NOW)
      tv[0].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_ATIME)
      tv[0] = attr->st_atim;
    if (valid & FUSE_SET_ATTR_MTIME_NOW)
      tv[1].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_MTIME)
      tv[1] = attr->st_mtim;
    res = fi ? ::futimens(Fd(fi), tv) : ::utimensat(AT_FDCWD, path.c_str(), tv, 0);
  }
  if (res != 0) return s->ReplyErr(req, d, errno);
  struct stat st;
  if (::fstatat(in->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
    return s->ReplyErr(req, d, errno);
  }
  double timeout = s->AttrRulesArmed() ? 0 : kCacheTimeout;
  s->Respond(d, [req, st, timeout] { fuse_reply_attr(req, &st, timeout); });
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  Impl* s = Self(req);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kReadlink, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  char buf[PATH_MAX + 1];
  ssize_t n = ::readlinkat(in->fd, "", buf, sizeof(buf) - 1);
  if (n < 0) return s->ReplyErr(req, d, errno);
  buf[n] = 0;
  std::string target(buf, static_cast<size_t>(n));
  s->Respond(d, [req, target] { fuse_reply_readlink(req, target.c_str()); });
}

void MakeNode(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev,
              const char* link, Method m) {
  Impl* s = Self(req);
  Inode* p = s->Get(parent);
  Decision d = s->Check(m, p, name);
  if (d.err) return s->ReplyErr(req, d, d.err);
  int res;
  if (link)
    res = ::symlinkat(link, p->fd, name);
  else if (S_ISDIR(mode))
    res = ::mkdirat(p->fd, name, mode);
  else
    res = ::mknodat(p->fd, name, mode, rdev);
  if (res < 0) return s->ReplyErr(req, d, errno);
  if (s->TracksName(p, name)) s->names.Created(s->DirOf(p), name, S_ISDIR(mode), mode);
  s->FixOwnership(req, p->fd, name, mode, link != nullptr);
  fuse_entry_param e;
  int err = s->DoLookup(p, name, &e);
  if (err) return s->ReplyErr(req, d, err);
  s->Respond(d, [req, e] { fuse_reply_entry(req, &e); });
}

void OpMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  MakeNode(req, parent, name, mode, rdev, nullptr, Method::kMknod);
}
void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  MakeNode(req, parent, name, S_IFDIR | mode, 0, nullptr, Method::kMkdir);
}
void OpSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  MakeNode(req, parent, name, S_IFLNK, 0, link, Method::kSymlink);
}

void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Impl* s = Self(req);
  Inode* in = s->Get(ino);
  Inode* np = s->Get(newparent);
  Decision d = s->Check(Method::kLink, np, newname);
  if (d.err) return s->ReplyErr(req, d, d.err);
  if (::linkat(AT_FDCWD, ProcPath(in->fd).c_str(), np->fd, newname, AT_SYMLINK_FOLLOW) < 0) {
    return s->ReplyErr(req, d, errno);
  }
  fuse_entry_param e;
  int err = s->DoLookup(np, newname, &e);
  if (err) return s->ReplyErr(req, d, err);
  s->Respond(d, [req, e] { fuse_reply_entry(req, &e); });
}

void Remove(fuse_req_t req, fuse_ino_t parent, const char* name, bool dir) {
  Impl* s = Self(req);
  Inode* p = s->Get(parent);
  Decision d = s->Check(dir ? Method::kRmdir : Method::kUnlink, p, name);
  if (d.err) return s->ReplyErr(req, d, d.err);
  const bool track = s->TracksName(p, name);
  std::string kept;
  struct stat old {};
  if (track && ::fstatat(p->fd, name, &old, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(old.st_mode)) {
    kept = s->names.Keep(s->DirOf(p), name);
  }
  int res = ::unlinkat(p->fd, name, dir ? AT_REMOVEDIR : 0);
  int err = res < 0 ? errno : 0;
  if (track && err)
    s->names.Drop(s->DirOf(p), kept);
  else if (track)
    s->names.Removed(s->DirOf(p), name, kept, dir, old.st_mode);
  s->ReplyErr(req, d, err);
}
void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Remove(req, parent, name, false);
}
void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Remove(req, parent, name, true);
}

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) {
  Impl* s = Self(req);
  Inode* p = s->Get(parent);
  Inode* np = s->Get(newparent);
  Decision d = s->Check(Method::kRename, p, name);
  if (d.err) return s->ReplyErr(req, d, d.err);
  // An exchange is not modelled: both names exist before and after.
  const bool track =
      !(flags & RENAME_EXCHANGE) && (s->TracksName(p, name) || s->TracksName(np, newname));
  std::string kept;
  struct stat replaced {};
  bool replaced_dir = false;
  if (track && ::fstatat(np->fd, newname, &replaced, AT_SYMLINK_NOFOLLOW) == 0) {
    replaced_dir = S_ISDIR(replaced.st_mode);
    if (!replaced_dir) kept = s->names.Keep(s->DirOf(np), newname);
  }
  if (::renameat2(p->fd, name, np->fd, newname, flags) < 0) {
    int err = errno;
    if (track) s->names.Drop(s->DirOf(np), kept);
    return s->ReplyErr(req, d, err);
  }
  if (track) {
    s->names.Renamed(s->DirOf(p), name, s->DirOf(np), newname, kept, replaced_dir,
                     replaced.st_mode);
  }
  // Keep the moved inode's path current for rule globs (the kernel will not look it up again).
  struct stat st;
  if (::fstatat(np->fd, newname, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    std::lock_guard lock(s->table_mu);
    auto it = s->inodes.find(std::make_pair(st.st_dev, st.st_ino));
    if (it != s->inodes.end()) s->SetName(it->second.get(), np, newname);
  }
  s->ReplyErr(req, d, 0);
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Impl* s = Self(req);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kOpen, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  s->WaitCrash();
  if ((fi->flags & O_TRUNC) && s->tracking.load(std::memory_order_acquire)) {
    // An open that truncates changes data like a write: track it as one.
    struct stat old;
    if (s->TracksPath(in) && ::fstatat(in->fd, "", &old, AT_EMPTY_PATH) == 0 &&
        !s->TrackChange(req, in, 0, static_cast<size_t>(old.st_size))) {
      return s->ReplyErr(req, d, EIO);
    }
  }
  int fd = ::openat(s->proc_self_fd, std::to_string(in->fd).c_str(),
                    (fi->flags & ~O_NOFOLLOW) | O_CLOEXEC);
  if (fd < 0) return s->ReplyErr(req, d, errno);
  s->OpenPolicy(in, fi, fd);
  fuse_file_info out = *fi;
  s->Respond(d, [req, out] {
    if (fuse_reply_open(req, &out) != 0) ::close(Fd(const_cast<fuse_file_info*>(&out)));
  });
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  Impl* s = Self(req);
  Inode* p = s->Get(parent);
  Decision d = s->Check(Method::kCreate, p, name);
  if (d.err) return s->ReplyErr(req, d, d.err);
  s->WaitCrash();
  // Whether the name is new, for the crash model (an O_CREAT open of an existing file makes none).
  const bool track =
      s->TracksName(p, name) && ::faccessat(p->fd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0;
  int fd = ::openat(p->fd, name, (fi->flags | O_CREAT | O_CLOEXEC) & ~O_NOFOLLOW, mode);
  if (fd < 0) return s->ReplyErr(req, d, errno);
  if (track) s->names.Created(s->DirOf(p), name, false, mode);
  s->FixOwnership(req, p->fd, name, mode, false);
  fuse_entry_param e;
  int err = s->DoLookup(p, name, &e);
  if (err) {
    ::close(fd);
    return s->ReplyErr(req, d, err);
  }
  s->OpenPolicy(s->Get(e.ino), fi, fd);
  fuse_file_info out = *fi;
  s->Respond(d, [req, e, out] {
    if (fuse_reply_create(req, &e, &out) != 0) ::close(Fd(const_cast<fuse_file_info*>(&out)));
  });
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Impl* s = Self(req);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kRead, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  if (d.delay.count() == 0 && d.shaping.empty()) {
    fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    buf.buf[0].fd = Fd(fi);
    buf.buf[0].pos = off;
    fuse_reply_data(req, &buf, static_cast<fuse_buf_copy_flags>(0));
    return;
  }
  auto data = std::make_shared<std::vector<char>>(size);
  ssize_t n = ::pread(Fd(fi), data->data(), size, off);
  if (n < 0) return s->ReplyErr(req, d, errno);
  size_t len = static_cast<size_t>(n);
  // Shaping acts on direct_io opens only: a short or corrupted page in the page cache would
  // outlive the rule (and a short buffered read makes the kernel think the file shrank).
  if (Direct(fi)) {
    for (auto [rule, draw] : d.shaping) {
      if (rule->spec().kind == RuleKind::kShort) {
        size_t keep = rule->ShortLength(len);
        rule->CountEffect(static_cast<int64_t>(len - keep));
        len = keep;
      } else if (rule->spec().kind == RuleKind::kCorrupt && !rule->spec().corrupt_on_write) {
        rule->CountEffect(static_cast<int64_t>(rule->Corrupt(draw, data->data(), len)));
      }
    }
  }
  s->Respond(d, [req, data, len] { fuse_reply_buf(req, data->data(), len); });
}

void OpWriteBuf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* in_buf, off_t off,
                fuse_file_info* fi) {
  Impl* s = Self(req);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kWrite, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  size_t size = fuse_buf_size(in_buf);
  bool track = s->Tracks(d);
  if (s->crashing.load(std::memory_order_acquire)) return s->ReplyErr(req, d, EIO);
  if (d.crash && d.crash->spec().kind == RuleKind::kCrashAt && !d.crash->spec().crash_after_op) {
    s->Crash(s->Shared(d.crash), fuse_req_ctx(req)->pid, {}, "crash-at before a write");
    d.crash->CountEffect(1);
    return s->ReplyErr(req, d, EIO);
  }
  if (d.delay.count() == 0 && d.shaping.empty() && d.enospc == nullptr && !track && !d.crash) {
    fuse_bufvec out = FUSE_BUFVEC_INIT(size);
    out.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    out.buf[0].fd = Fd(fi);
    out.buf[0].pos = off;
    ssize_t res = fuse_buf_copy(&out, in_buf, static_cast<fuse_buf_copy_flags>(0));
    if (res < 0)
      fuse_reply_err(req, static_cast<int>(-res));
    else
      fuse_reply_write(req, static_cast<size_t>(res));
    return;
  }
  std::vector<char> mem(size);
  fuse_bufvec mbuf = FUSE_BUFVEC_INIT(size);
  mbuf.buf[0].mem = mem.data();
  ssize_t got = fuse_buf_copy(&mbuf, in_buf, static_cast<fuse_buf_copy_flags>(0));
  if (got < 0) return s->ReplyErr(req, d, static_cast<int>(-got));
  size_t len = static_cast<size_t>(got);
  for (auto [rule, draw] : d.shaping) {
    if (rule->spec().kind == RuleKind::kShort && Direct(fi)) {
      size_t keep = rule->ShortLength(len);
      rule->CountEffect(static_cast<int64_t>(len - keep));
      len = keep;
    } else if (rule->spec().kind == RuleKind::kCorrupt && rule->spec().corrupt_on_write) {
      rule->CountEffect(static_cast<int64_t>(rule->Corrupt(draw, mem.data(), len)));
    }
  }
  if (d.enospc != nullptr && len > 0) {
    size_t room = d.enospc->TakeSpace(len);
    if (room == 0) {
      d.enospc->CountEffect(1);
      return s->ReplyErr(req, d, ENOSPC);
    }
    len = room;
  }
  if (d.crash && d.crash->spec().kind == RuleKind::kTornWrite) {
    // The write never lands whole: the chosen parts are written after the rollback, as what
    // reached the disk before the power went.
    auto bounds = d.crash->spec().tear_at;
    if (bounds.empty()) {
      uint32_t parts = std::max<uint32_t>(d.crash->spec().tear_parts, 2);
      for (uint32_t i = 1; i < parts; ++i) bounds.push_back(len * i / parts);
    }
    bounds.erase(std::remove_if(bounds.begin(), bounds.end(),
                                [&](uint64_t b) { return b == 0 || b >= len; }),
                 bounds.end());
    std::sort(bounds.begin(), bounds.end());
    bounds.insert(bounds.begin(), 0);
    bounds.push_back(len);
    auto kept = d.crash->ChooseKept(bounds.size() - 1);
    std::vector<PendingWrite> persist;
    uint64_t lost = 0;
    for (size_t i = 0; i + 1 < bounds.size(); ++i) {
      size_t a = bounds[i], b = bounds[i + 1];
      if (kept[i]) {
        persist.push_back(
            {in->dev, in->ino, off + static_cast<off_t>(a), std::string(mem.data() + a, b - a)});
      } else {
        lost += b - a;
      }
    }
    d.crash->CountEffect(static_cast<int64_t>(lost));
    // Registered with the log (nothing to save) so the rollback knows the file.
    s->unsynced.BeforeChange(in->dev, in->ino, in->fd, reinterpret_cast<uintptr_t>(in), off, 0);
    s->Crash(s->Shared(d.crash), fuse_req_ctx(req)->pid, std::move(persist), "torn write");
    return s->ReplyErr(req, d, EIO);
  }
  if (track && len > 0) {
    if (!s->TrackChange(req, in, off, len)) return s->ReplyErr(req, d, EIO);
    if (d.record && !s->unsynced.Record(in->dev, in->ino, off, mem.data(), len)) {
      s->TrackChange(req, in, 0, SIZE_MAX / 2);  // over the bound: the early crash
      return s->ReplyErr(req, d, EIO);
    }
  }
  ssize_t res = len == 0 ? 0 : ::pwrite(Fd(fi), mem.data(), len, off);
  if (res < 0) return s->ReplyErr(req, d, errno);
  size_t written = static_cast<size_t>(res);
  if (d.crash && d.crash->spec().kind == RuleKind::kCrashAt) {
    s->Crash(s->Shared(d.crash), fuse_req_ctx(req)->pid, {}, "crash-at after a write");
    d.crash->CountEffect(1);
  }
  s->Respond(d, [req, written] { fuse_reply_write(req, written); });
}

void OpFlush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Impl* s = Self(req);
  Decision d = s->Check(Method::kFlush, s->Get(ino));
  if (d.err) return s->ReplyErr(req, d, d.err);
  // close() of a dup reports the errors a filesystem defers to close (NFS-style).
  int res = ::close(::dup(Fd(fi)));
  s->ReplyErr(req, d, res < 0 ? errno : 0);
}

void OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Impl* s = Self(req);
  Decision d = s->Check(Method::kRelease, s->Get(ino));
  ::close(Fd(fi));
  s->ReplyErr(req, d, 0);  // the kernel ignores release errors
}

void OpFsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  Impl* s = Self(req);
  Inode* in = s->Get(ino);
  Decision d = s->Check(datasync ? Method::kFdatasync : Method::kFsync, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  if (s->crashing.load(std::memory_order_acquire)) return s->ReplyErr(req, d, EIO);
  if (d.crash) {
    auto kind = d.crash->spec().kind;
    std::vector<PendingWrite> persist;
    if (kind == RuleKind::kTornSequence) {
      // The power goes during this sync: of the writes since the last one, the chosen reach
      // the disk, the others do not.
      auto writes = s->unsynced.Recorded(in->dev, in->ino);
      auto kept = d.crash->ChooseKept(writes.size());
      for (size_t i = 0; i < writes.size(); ++i) {
        if (kept[i])
          persist.push_back(std::move(writes[i]));
        else
          d.crash->CountEffect(1);
      }
    }
    if (kind != RuleKind::kCrashAt || !d.crash->spec().crash_after_op) {
      if (kind == RuleKind::kCrashAt) d.crash->CountEffect(1);
      s->Crash(s->Shared(d.crash), fuse_req_ctx(req)->pid, std::move(persist),
               std::string(RuleKindName(kind)) + " at a sync");
      return s->ReplyErr(req, d, EIO);
    }
  }
  int res = 0;
  if (d.skip_sync == nullptr) {
    res = datasync ? ::fdatasync(Fd(fi)) : ::fsync(Fd(fi));
    // Durable now: a crash keeps it. A skipped sync leaves the file's log as it was.
    if (res == 0 && s->tracking.load(std::memory_order_acquire)) {
      s->unsynced.Synced(in->dev, in->ino);
    }
  }
  if (d.crash) {  // crash-at after the sync
    s->Crash(s->Shared(d.crash), fuse_req_ctx(req)->pid, {}, "crash-at after a sync");
    d.crash->CountEffect(1);
    return s->ReplyErr(req, d, EIO);
  }
  s->ReplyErr(req, d, res < 0 ? errno : 0);
}

void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Impl* s = Self(req);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kOpendir, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  int fd = ::openat(in->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return s->ReplyErr(req, d, errno);
  auto* dh = new DirHandle;
  dh->dp = ::fdopendir(fd);
  if (dh->dp == nullptr) {
    int err = errno;
    ::close(fd);
    delete dh;
    return s->ReplyErr(req, d, err);
  }
  fi->fh = reinterpret_cast<uintptr_t>(dh);
  fuse_file_info out = *fi;
  s->Respond(d, [req, out] { fuse_reply_open(req, &out); });
}

void DoReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
               bool plus) {
  Impl* s = Self(req);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kReaddir, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  auto* dh = reinterpret_cast<DirHandle*>(static_cast<uintptr_t>(fi->fh));
  auto buf = std::make_shared<std::vector<char>>(size);
  char* p = buf->data();
  size_t rem = size;
  if (off != dh->offset) {
    ::seekdir(dh->dp, off);
    dh->entry = nullptr;
    dh->offset = off;
  }
  int err = 0;
  while (true) {
    if (dh->entry == nullptr) {
      errno = 0;
      dh->entry = ::readdir(dh->dp);
      if (dh->entry == nullptr) {
        err = errno;
        break;
      }
    }
    const char* name = dh->entry->d_name;
    off_t next = dh->entry->d_off;
    size_t used;
    bool dot = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
    if (Impl::Hidden(name)) {  // the crash model's kept inodes are not the program's
      dh->entry = nullptr;
      dh->offset = next;
      continue;
    }
    if (plus && !dot) {
      fuse_entry_param e;
      if (int lerr = s->DoLookup(in, name, &e); lerr != 0) {
        // Vanished between readdir and lookup: skip it.
        dh->entry = nullptr;
        dh->offset = next;
        if (lerr == ENOENT) continue;
        err = lerr;
        break;
      }
      used = fuse_add_direntry_plus(req, p, rem, name, &e, next);
      if (used > rem) {
        s->Forget(s->Get(e.ino), 1);  // not sent: the kernel never saw this reference
        break;
      }
    } else {
      struct stat st {};
      st.st_ino = dh->entry->d_ino;
      st.st_mode = static_cast<mode_t>(dh->entry->d_type) << 12;
      if (plus) {
        fuse_entry_param e{};
        e.attr = st;
        used = fuse_add_direntry_plus(req, p, rem, name, &e, next);
      } else {
        used = fuse_add_direntry(req, p, rem, name, &st, next);
      }
      if (used > rem) break;
    }
    p += used;
    rem -= used;
    dh->entry = nullptr;
    dh->offset = next;
  }
  if (err != 0 && rem == size) return s->ReplyErr(req, d, err);
  size_t len = size - rem;
  s->Respond(d, [req, buf, len] { fuse_reply_buf(req, buf->data(), len); });
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  DoReaddir(req, ino, size, off, fi, false);
}
void OpReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  DoReaddir(req, ino, size, off, fi, true);
}

void OpReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  auto* dh = reinterpret_cast<DirHandle*>(static_cast<uintptr_t>(fi->fh));
  ::closedir(dh->dp);
  delete dh;
  fuse_reply_err(req, 0);
}

void OpFsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  Impl* s = Self(req);
  Decision d = s->Check(Method::kFsyncdir, s->Get(ino));
  if (d.err) return s->ReplyErr(req, d, d.err);
  if (d.skip_sync) return s->ReplyErr(req, d, 0);
  auto* dh = reinterpret_cast<DirHandle*>(static_cast<uintptr_t>(fi->fh));
  int fd = ::dirfd(dh->dp);
  int res = datasync ? ::fdatasync(fd) : ::fsync(fd);
  if (res == 0 && s->tracking.load(std::memory_order_acquire)) {
    Inode* in = s->Get(ino);
    s->names.Synced(in->dev, in->ino);
  }
  s->ReplyErr(req, d, res < 0 ? errno : 0);
}

void OpStatfs(fuse_req_t req, fuse_ino_t ino) {
  Impl* s = Self(req);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kStatfs, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  struct statvfs sv;
  if (::fstatvfs(in->fd, &sv) < 0) return s->ReplyErr(req, d, errno);
  s->Respond(d, [req, sv] { fuse_reply_statfs(req, &sv); });
}

void OpFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                 fuse_file_info* fi) {
  Impl* s = Self(req);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kFallocate, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  if (s->crashing.load(std::memory_order_acquire)) return s->ReplyErr(req, d, EIO);
  if (s->Tracks(d)) {
    // Allocation only changes the size (cut back by a rollback); the other modes change data.
    bool data = (mode & ~FALLOC_FL_KEEP_SIZE) != 0;
    if (!s->TrackChange(req, in, off, data ? static_cast<size_t>(len) : 0)) {
      return s->ReplyErr(req, d, EIO);
    }
  }
  bool grows = (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE)) == 0;
  if (d.enospc != nullptr && grows) {
    // Space is reserved all or nothing, like the real call.
    uint64_t want = static_cast<uint64_t>(len);
    uint64_t got = d.enospc->TakeSpace(want);
    if (got < want) {
      d.enospc->CountEffect(1);
      return s->ReplyErr(req, d, ENOSPC);
    }
  }
  int res = ::fallocate(Fd(fi), mode, off, len);
  s->ReplyErr(req, d, res < 0 ? errno : 0);
}

// Extended attributes go through /proc/self/fd/N: *xattr calls do not accept O_PATH fds.
// Symlinks are refused (ENOTSUP): following the magic link would reach the symlink's target.
void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Impl* s = Self(req);
  // ENOSYS: the kernel stops sending GETXATTR for the rest of the mount (Options::xattr).
  if (!s->xattr) return (void)fuse_reply_err(req, ENOSYS);
  // Asked before every write by the kernel's setuid/capability-clearing check. File
  // capabilities are not exposed through the overlay, so answering without a syscall keeps an
  // idle write to one cheap round trip instead of two syscalls more.
  if (strcmp(name, "security.capability") == 0) return (void)fuse_reply_err(req, ENODATA);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kGetxattr, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  if (in->type == S_IFLNK) return s->ReplyErr(req, d, ENOTSUP);
  std::string path = ProcPath(in->fd);
  if (size == 0) {
    ssize_t n = ::getxattr(path.c_str(), name, nullptr, 0);
    if (n < 0) return s->ReplyErr(req, d, errno);
    size_t count = static_cast<size_t>(n);
    return s->Respond(d, [req, count] { fuse_reply_xattr(req, count); });
  }
  auto buf = std::make_shared<std::vector<char>>(size);
  ssize_t n = ::getxattr(path.c_str(), name, buf->data(), size);
  if (n < 0) return s->ReplyErr(req, d, errno);
  size_t len = static_cast<size_t>(n);
  s->Respond(d, [req, buf, len] { fuse_reply_buf(req, buf->data(), len); });
}

void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Impl* s = Self(req);
  if (!s->xattr) return (void)fuse_reply_err(req, ENOSYS);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kListxattr, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  if (in->type == S_IFLNK) return s->ReplyErr(req, d, ENOTSUP);
  std::string path = ProcPath(in->fd);
  if (size == 0) {
    ssize_t n = ::listxattr(path.c_str(), nullptr, 0);
    if (n < 0) return s->ReplyErr(req, d, errno);
    size_t count = static_cast<size_t>(n);
    return s->Respond(d, [req, count] { fuse_reply_xattr(req, count); });
  }
  auto buf = std::make_shared<std::vector<char>>(size);
  ssize_t n = ::listxattr(path.c_str(), buf->data(), size);
  if (n < 0) return s->ReplyErr(req, d, errno);
  size_t len = static_cast<size_t>(n);
  s->Respond(d, [req, buf, len] { fuse_reply_buf(req, buf->data(), len); });
}

void OpSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                int flags) {
  Impl* s = Self(req);
  if (!s->xattr) return (void)fuse_reply_err(req, ENOSYS);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kSetxattr, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  if (in->type == S_IFLNK) return s->ReplyErr(req, d, ENOTSUP);
  int res = ::setxattr(ProcPath(in->fd).c_str(), name, value, size, flags);
  s->ReplyErr(req, d, res < 0 ? errno : 0);
}

void OpRemovexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Impl* s = Self(req);
  if (!s->xattr) return (void)fuse_reply_err(req, ENOSYS);
  Inode* in = s->Get(ino);
  Decision d = s->Check(Method::kRemovexattr, in);
  if (d.err) return s->ReplyErr(req, d, d.err);
  if (in->type == S_IFLNK) return s->ReplyErr(req, d, ENOTSUP);
  int res = ::removexattr(ProcPath(in->fd).c_str(), name);
  s->ReplyErr(req, d, res < 0 ? errno : 0);
}

void OpLseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
  off_t res = ::lseek(Fd(fi), off, whence);
  if (res < 0)
    fuse_reply_err(req, errno);
  else
    fuse_reply_lseek(req, res);
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.forget_multi = OpForgetMulti;
  ops.getattr = OpGetattr;
  ops.setattr = OpSetattr;
  ops.readlink = OpReadlink;
  ops.mknod = OpMknod;
  ops.mkdir = OpMkdir;
  ops.symlink = OpSymlink;
  ops.link = OpLink;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.rename = OpRename;
  ops.open = OpOpen;
  ops.create = OpCreate;
  ops.read = OpRead;
  ops.write_buf = OpWriteBuf;
  ops.flush = OpFlush;
  ops.release = OpRelease;
  ops.fsync = OpFsync;
  ops.opendir = OpOpendir;
  ops.readdir = OpReaddir;
  ops.readdirplus = OpReaddirplus;
  ops.releasedir = OpReleasedir;
  ops.fsyncdir = OpFsyncdir;
  ops.statfs = OpStatfs;
  ops.fallocate = OpFallocate;
  ops.getxattr = OpGetxattr;
  ops.listxattr = OpListxattr;
  ops.setxattr = OpSetxattr;
  ops.removexattr = OpRemovexattr;
  ops.lseek = OpLseek;
  return ops;
}

const fuse_lowlevel_ops kOps = MakeOps();

std::optional<MountEntry> FindMount(const std::string& dir) {
  std::optional<MountEntry> found;
  for (auto& m : FaultlineMounts()) {
    if (m.mount_point == dir) found = m;  // the last one is the top of the stack
  }
  return found;
}

}  // namespace

Overlay::Overlay(const std::filesystem::path& dir) : Overlay(dir, Options{}) {}

Overlay::Overlay(const std::filesystem::path& dir, Options options)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.delays = std::make_unique<ReleaseQueue>(ReleaseQueue::Options{options.release_spin_ns});
  s.xattr = options.xattr;
  s.worker_mode = options.workers;
  // comm holds 15 characters: the common prefix and four of this mount's own.
  s.worker_name = "fl-io-fuse-" + s.instance.substr(0, 4);
  s.workers_realtime = options.workers == Options::Workers::kRealtime;
  std::error_code ec;
  s.dir = std::filesystem::canonical(dir, ec);
  if (ec) throw FaultError("overlay " + dir.string() + ": " + ec.message());
  if (!std::filesystem::is_directory(s.dir)) {
    throw FaultError("overlay " + dir.string() + ": not a directory");
  }
  if (FindMount(s.dir.string())) {
    throw FaultError("overlay " + s.dir.string() +
                     ": a faultline overlay is already mounted there");
  }
  // Opened before the mount: the only way back to the real directory once it is covered. Owned
  // here until the mount succeeded, so every failure below closes them.
  sys::UniqueFd root(::open(s.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) ThrowErrno("overlay: open " + s.dir.string());
  struct stat st;
  if (::fstat(root.get(), &st) < 0) ThrowErrno("overlay: stat " + s.dir.string());
  s.root.dev = st.st_dev;
  s.root.ino = st.st_ino;
  s.root.type = S_IFDIR;
  s.root.nlookup = 2;
  sys::UniqueFd proc_self(::open("/proc/self/fd", O_PATH | O_CLOEXEC));
  if (!proc_self) ThrowErrno("overlay: open /proc/self/fd");
  s.umask_bits = ::umask(022);
  ::umask(s.umask_bits);

  std::vector<std::string> argv = {"faultline", "-o",
                                   "default_permissions,allow_other,fsname=faultline,"
                                   "subtype=faultline"};
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(cargv.size()), cargv.data());
  s.se = fuse_session_new(&args, &kOps, sizeof(kOps), &s);
  fuse_opt_free_args(&args);  // option parsing may have copied argv
  if (s.se == nullptr) {
    throw FaultError("overlay " + s.dir.string() + ": fuse_session_new failed");
  }
  if (fuse_session_mount(s.se, s.dir.c_str()) != 0) {
    fuse_session_destroy(s.se);
    throw FaultError("overlay " + s.dir.string() +
                     ": mount failed (is /dev/fuse available and are we root?)");
  }
  s.root.fd = root.release();
  s.proc_self_fd = proc_self.release();
  if (auto m = FindMount(s.dir.string())) s.mount_entry = *m;
  s.loop_cfg = fuse_loop_cfg_create();
  // One /dev/fuse fd per worker: requests do not contend on a single queue read.
  fuse_loop_cfg_set_clone_fd(s.loop_cfg, 1);
  fuse_loop_cfg_set_max_threads(s.loop_cfg, static_cast<unsigned>(options.max_threads));
  // Keep idle workers instead of destroying and re-creating threads between bursts.
  fuse_loop_cfg_set_idle_threads(s.loop_cfg, static_cast<unsigned>(options.max_threads));
  s.loop = std::thread([&s, rt = s.workers_realtime] {
    // libfuse's workers inherit this thread's name and policy (and enrol at their first request).
    pthread_setname_np(pthread_self(), s.worker_name.c_str());
    if (rt) sys::MakeThreadRealtime(kWorkerPriority, 0);
    fuse_session_loop_mt(s.se, s.loop_cfg);
    std::lock_guard lock(s.loop_mu);
    s.loop_done = true;
    s.loop_cv.notify_all();
  });
}

Overlay::~Overlay() {
  Impl& s = *impl_;
  // Release every held reply first so no caller stays blocked on a dying connection.
  s.closing.store(true);
  s.delays->Stop();
  {
    // A crash under way finishes first: its victims may wait on this connection.
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(s.crash_mu);
      threads.swap(s.crash_threads);
    }
    for (auto& t : threads) t.join();
  }
  fuse_session_exit(s.se);
  fuse_session_unmount(s.se);  // lazy (MNT_DETACH) when root
  {
    std::unique_lock lock(s.loop_mu);
    // The loop ends when the connection does. That happens at unmount unless some process
    // still holds a file open under the mount; then abort the connection.
    if (!s.loop_cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return s.loop_done; })) {
      lock.unlock();
      AbortConnection(s.mount_entry.major, s.mount_entry.minor);
    }
  }
  s.loop.join();
  fuse_session_destroy(s.se);
  fuse_loop_cfg_destroy(s.loop_cfg);
  for (auto& [k, in] : s.inodes) ::close(in->fd);
  ::close(s.root.fd);
  ::close(s.proc_self_fd);
}

const std::filesystem::path& Overlay::dir() const { return impl_->dir; }
const std::string& Overlay::instance() const { return impl_->instance; }
const std::string& Overlay::worker_thread_name() const { return impl_->worker_name; }
const sys::ThreadScheduling& Overlay::ReleaseScheduling() const {
  return impl_->delays->scheduling();
}
const Lateness& Overlay::ReleaseLateness() const { return impl_->delays->lateness(); }

sys::ThreadScheduling Overlay::WorkerScheduling() const {
  const Impl& s = *impl_;
  std::lock_guard lock(s.workers_mu);
  sys::ThreadScheduling out;
  out.realtime = s.workers_realtime && s.workers_error.empty();
  out.policy = out.realtime ? SCHED_FIFO : SCHED_OTHER;
  out.priority = out.realtime ? kWorkerPriority : 0;
  out.detail = out.realtime ? "SCHED_FIFO " + std::to_string(kWorkerPriority) : "SCHED_OTHER";
  if (s.workers_realtime && !s.workers_error.empty()) {
    out.detail += " (SCHED_FIFO refused: " + s.workers_error + ")";
  }
  out.detail += " (" + std::string(WorkersName(s.worker_mode)) + ", " +
                std::to_string(s.WorkerTids().size()) + " threads " + s.worker_name + ")";
  return out;
}

std::string_view WorkersName(Overlay::Options::Workers w) {
  switch (w) {
    case Overlay::Options::Workers::kOrdinary:
      return "ordinary";
    case Overlay::Options::Workers::kWhileDelaying:
      return "while-delaying";
    case Overlay::Options::Workers::kRealtime:
      return "realtime";
  }
  return "?";
}

std::optional<Overlay::Options::Workers> ParseWorkers(std::string_view name) {
  for (auto w : {Overlay::Options::Workers::kOrdinary, Overlay::Options::Workers::kWhileDelaying,
                 Overlay::Options::Workers::kRealtime}) {
    if (WorkersName(w) == name) return w;
  }
  return std::nullopt;
}

std::shared_ptr<Rule> Overlay::Arm(RuleSpec spec) {
  std::shared_ptr<Rule> rule;
  {
    std::lock_guard lock(impl_->rules_mu);
    rule = std::make_shared<Rule>(impl_->next_rule_id++, std::move(spec));
    auto list = impl_->rules.load()->rules;
    list.push_back(rule);
    impl_->Publish(std::move(list));
  }
  impl_->InvalidateMatching(*rule);
  if (rule->spec().kind == RuleKind::kLoseUnsynced && rule->spec().crash_after.count() > 0) {
    Impl* s = impl_.get();
    std::weak_ptr<Rule> weak = rule;
    s->delays->Add(sys::MonotonicNs() + rule->spec().crash_after.count(), [s, weak] {
      auto r = weak.lock();
      if (r && !s->closing.load() && s->Shared(r.get())) {
        s->Crash(r, 0, {}, "lose-unsynced crash_after");
      }
    });
  }
  return rule;
}

bool Overlay::Crash(std::chrono::milliseconds wait) {
  if (!impl_->Crash(nullptr, 0, {}, "crash command")) return false;
  std::unique_lock lock(impl_->crash_mu);
  return impl_->crash_cv.wait_for(lock, wait, [&] { return !impl_->crashing.load(); });
}

Overlay::CrashStats Overlay::Crashes() const {
  std::lock_guard lock(impl_->crash_mu);
  return {impl_->crashes, impl_->last_crash, impl_->last_killed, impl_->unsynced.held(),
          impl_->crashing.load()};
}

bool Overlay::Disarm(uint64_t rule_id) {
  std::shared_ptr<Rule> gone;
  {
    std::lock_guard lock(impl_->rules_mu);
    auto list = impl_->rules.load()->rules;
    for (auto it = list.begin(); it != list.end(); ++it) {
      if ((*it)->id() == rule_id) {
        gone = *it;
        list.erase(it);
        break;
      }
    }
    if (!gone) return false;
    impl_->Publish(std::move(list));
  }
  // Attributes overridden by an attr rule were served uncached; nothing corrupted or short
  // was cached either (direct_io), so only attr rules need the kernel to forget.
  if (gone->spec().kind == RuleKind::kAttr) impl_->InvalidateMatching(*gone);
  return true;
}

std::vector<std::shared_ptr<Rule>> Overlay::Rules() const { return impl_->rules.load()->rules; }

std::vector<MountEntry> FaultlineMounts() {
  std::vector<MountEntry> out;
  for (const auto& mi : sys::ReadMountInfo()) {
    if (mi.fstype != "fuse.faultline") continue;
    MountEntry m;
    m.mount_point = mi.mount_point;
    m.major = mi.major;
    m.minor = mi.minor;
    out.push_back(m);
  }
  return out;
}

namespace {

// A daemon that died (the agent was SIGKILLed) leaves its mount answering ENOTCONN. statfs is
// never served from the kernel's caches, so it reaches the daemon if there is one.
//
// A daemon that is alive but stopped (SIGSTOP, a debugger) or stuck never answers, and statfs
// would hang the sweep — and with it the agent's start — for as long: the call runs on its own
// thread and a mount that has not answered within two seconds counts as alive (someone serves it;
// it is not ours to unmount). The waiting thread is left behind until the daemon answers.
bool Alive(const std::string& mount_point) {
  auto answer = std::make_shared<std::promise<bool>>();
  std::future<bool> got = answer->get_future();
  std::thread([answer, mount_point] {
    struct statvfs sv;
    answer->set_value(::statvfs(mount_point.c_str(), &sv) == 0);
  }).detach();
  if (got.wait_for(std::chrono::seconds(2)) != std::future_status::ready) return true;
  return got.get();
}

bool Under(const std::string& path, const std::string& prefix) {
  if (prefix.empty()) return true;
  return path == prefix || path.rfind(prefix.back() == '/' ? prefix : prefix + "/", 0) == 0;
}

}  // namespace

std::vector<std::string> SweepStaleMounts(const std::vector<std::string>& keep,
                                          const std::string& under) {
  std::vector<std::string> did;
  auto mounts = FaultlineMounts();
  // Innermost first, so a stacked mount does not keep its parent busy.
  for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) {
    if (!Under(it->mount_point, under)) continue;
    if (std::find(keep.begin(), keep.end(), it->mount_point) != keep.end()) continue;
    if (Alive(it->mount_point)) {
      did.push_back("left live faultline overlay " + it->mount_point +
                    " alone (served by another process)");
      continue;
    }
    AbortConnection(it->major, it->minor);
    if (::umount2(it->mount_point.c_str(), MNT_DETACH) == 0) {
      did.push_back("unmounted stale faultline overlay " + it->mount_point);
    } else {
      did.push_back("could not unmount stale faultline overlay " + it->mount_point + ": " +
                    strerror(errno));
    }
  }
  return did;
}

std::optional<MountEntry> FindFaultlineMount(const std::string& dir) { return FindMount(dir); }

bool MountServed(const std::string& mount_point) { return Alive(mount_point); }

void DetachMount(const MountEntry& mount) {
  AbortConnection(mount.major, mount.minor);
  ::umount2(mount.mount_point.c_str(), MNT_DETACH);
}

}  // namespace faultline::faults::io
