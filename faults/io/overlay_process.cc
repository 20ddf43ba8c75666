#include "faults/io/overlay_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "faults/core/duration.h"
#include "faults/core/errors.h"
#include "faults/core/lateness.h"
#include "faults/core/log_line.h"
#include "faults/io/crash.h"
#include "faults/io/io_faults.h"
#include "faults/io/spec.h"

namespace faultline::faults::io {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Requests and replies are small (a rule list); the largest allowed is far above any.
constexpr size_t kMaxMessage = 1 << 20;

// A unix socket address for `path`. sun_path holds 107 bytes, less than a state dir may need:
// a longer path is reached through an O_PATH fd of its directory (/proc/self/fd/N/name), which
// `dir_fd` keeps open until bind/connect is done.
sockaddr_un Address(const fs::path& path, sys::UniqueFd& dir_fd) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::string p = path.string();
  if (p.size() >= sizeof a.sun_path) {
    dir_fd.reset(::open(path.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd) ThrowErrno("open " + path.parent_path().string());
    p = "/proc/self/fd/" + std::to_string(dir_fd.get()) + "/" + path.filename().string();
    if (p.size() >= sizeof a.sun_path) throw FaultError("socket name too long: " + path.string());
  }
  std::memcpy(a.sun_path, p.c_str(), p.size() + 1);
  return a;
}

bool SendMessage(int fd, const google::protobuf::MessageLite& m) {
  std::string bytes = m.SerializeAsString();
  return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

// One message, or nothing: 0 when the peer closed, -1 on error or timeout (errno says which).
int ReceiveMessage(int fd, google::protobuf::MessageLite* m, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  if (n == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  if (n < 0) return -1;
  std::string buf(kMaxMessage, '\0');
  ssize_t got;
  do {
    got = ::recv(fd, buf.data(), buf.size(), 0);
  } while (got < 0 && errno == EINTR);
  if (got <= 0) return static_cast<int>(got);
  if (!m->ParseFromArray(buf.data(), static_cast<int>(got))) {
    errno = EBADMSG;
    return -1;
  }
  return 1;
}

// The state of an overlay process: the overlay, its rules' specs and leases.
class Server {
 public:
  explicit Server(std::unique_ptr<Overlay> overlay) : overlay_(std::move(overlay)) {}

  v1::OverlayReply Handle(const v1::OverlayControl& req, bool* stop) {
    v1::OverlayReply out;
    try {
      switch (req.op_case()) {
        case v1::OverlayControl::kHello:
          break;
        case v1::OverlayControl::kArm: {
          const auto& spec = req.arm().spec();
          if (!spec.has_io()) throw FaultError("arm: not an io fault spec");
          if (auto errors = ValidateSpec(spec); !errors.empty()) {
            throw ValidationError(std::move(errors));
          }
          auto lease = FromProto(req.arm().lease());
          if (lease.count() <= 0) throw FaultError("arm: lease: must be positive");
          auto rule = overlay_->Arm(RuleFromSpec(spec));
          specs_[rule->id()] = spec;
          leases_[rule->id()] = Clock::now() + lease;
          out.set_rule_id(rule->id());
          break;
        }
        case v1::OverlayControl::kDisarm:
          out.set_done(Disarm(req.disarm()));
          break;
        case v1::OverlayControl::kLease: {
          auto it = leases_.find(req.lease().rule_id());
          if (it == leases_.end()) {
            throw FaultError("lease: no rule " + std::to_string(req.lease().rule_id()));
          }
          it->second = Clock::now() + FromProto(req.lease().lease());
          break;
        }
        case v1::OverlayControl::kCrash:
          out.set_done(overlay_->Crash());
          break;
        case v1::OverlayControl::kStop:
          *stop = true;
          break;
        default:
          throw FaultError("unknown request");
      }
    } catch (const std::exception& e) {
      out.set_error(e.what());
    }
    Fill(out);
    return out;
  }

  // Disarms the rules whose lease lapsed; returns how long until the next one does (-1: none).
  int ExpireLeases() {
    auto now = Clock::now();
    std::vector<uint64_t> lapsed;
    auto next = Clock::time_point::max();
    for (const auto& [id, until] : leases_) {
      if (until <= now)
        lapsed.push_back(id);
      else
        next = std::min(next, until);
    }
    for (uint64_t id : lapsed) {
      Disarm(id);
      ++lapsed_;
      LogLine("faultline-overlay", overlay_->dir().string() + ": rule " + std::to_string(id) +
                                       " ended: its lease lapsed");
    }
    if (next == Clock::time_point::max()) return -1;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    return static_cast<int>(std::min<int64_t>(ms, 60000));
  }

  void DisarmAll() {
    while (!leases_.empty()) Disarm(leases_.begin()->first);
  }

 private:
  bool Disarm(uint64_t id) {
    leases_.erase(id);
    specs_.erase(id);
    return overlay_->Disarm(id);
  }

  void Fill(v1::OverlayReply& out) {
    out.set_dir(overlay_->dir().string());
    out.set_instance(overlay_->instance());
    out.set_pid(::getpid());
    auto now = Clock::now();
    for (const auto& rule : overlay_->Rules()) {
      auto* r = out.add_rules();
      r->set_id(rule->id());
      if (auto it = specs_.find(rule->id()); it != specs_.end()) *r->mutable_spec() = it->second;
      r->set_matched(rule->matched());
      r->set_acted(rule->acted());
      r->set_effect(rule->effect());
      const Lateness::Summary late = rule->lateness().Summarize();
      r->set_late_samples(late.count);
      r->set_late_p50_ns(late.p50_ns);
      r->set_late_p99_ns(late.p99_ns);
      r->set_late_max_ns(late.max_ns);
      if (auto it = leases_.find(rule->id()); it != leases_.end()) {
        ToProto(std::max(Clock::duration::zero(), it->second - now), r->mutable_lease_left());
      }
    }
    auto c = overlay_->Crashes();
    out.set_crashes(c.crashes);
    out.set_last_crash(c.last);
    for (int pid : c.last_killed) out.add_last_crash_killed(pid);
    out.set_unsynced_bytes(c.unsynced_bytes);
    out.set_crashing(c.crashing);
    out.set_leases_lapsed(lapsed_);
    const sys::ThreadScheduling& release = overlay_->ReleaseScheduling();
    out.set_release_realtime(release.realtime);
    out.set_release_scheduling(release.detail);
    const sys::ThreadScheduling workers = overlay_->WorkerScheduling();
    out.set_workers_realtime(workers.realtime);
    out.set_workers_scheduling(workers.detail);
  }

  std::unique_ptr<Overlay> overlay_;
  std::map<uint64_t, v1::FaultSpec> specs_;
  std::map<uint64_t, Clock::time_point> leases_;
  int64_t lapsed_ = 0;
};

void Say(int fd, const std::string& what) {
  if (fd < 0) return;
  (void)!::write(fd, what.data(), what.size());
  ::close(fd);
}

// FNV-1a: a stable short name for a directory's socket.
std::string HashName(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

std::string OverlayServerPath() {
  if (const char* env = std::getenv("FAULTLINE_OVERLAY"); env != nullptr && *env != 0) return env;
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "faultline-overlay";
  return (self.parent_path() / "faultline-overlay").string();
}

int ServeOverlay(const ServeOptions& o) {
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  // Blocked before the FUSE threads start, so they inherit the mask and only the signalfd
  // sees these.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  sys::UniqueFd sigfd(::signalfd(-1, &stop_signals, SFD_CLOEXEC));
  sys::UniqueFd listener;
  std::unique_ptr<Server> server;
  try {
    if (!sigfd) ThrowErrno("signalfd");
    listener.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!listener) ThrowErrno("socket");
    // Bound before the mount: a socket that cannot be served must not leave a mount behind.
    sys::UniqueFd dir_fd;
    sockaddr_un addr = Address(o.socket, dir_fd);
    ::unlink(addr.sun_path);
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ThrowErrno("bind " + o.socket.string());
    }
    ::chmod(addr.sun_path, 0600);
    if (::listen(listener.get(), 8) != 0) ThrowErrno("listen " + o.socket.string());
    try {
      server = std::make_unique<Server>(std::make_unique<Overlay>(o.dir, o.overlay));
    } catch (...) {
      ::unlink(addr.sun_path);
      throw;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "faultline-overlay: %s\n", e.what());
    Say(o.ready_fd, std::string("error: ") + e.what());
    return 1;
  }
  Say(o.ready_fd, "ok");
  LogLine("faultline-overlay", "serving " + std::string(o.dir.c_str()) + " on " +
                                   o.socket.string() + " (pid " + std::to_string(::getpid()) + ")");

  std::vector<sys::UniqueFd> conns;
  bool stop = false;
  while (!stop) {
    int timeout = server->ExpireLeases();
    std::vector<pollfd> fds = {{listener.get(), POLLIN, 0}, {sigfd.get(), POLLIN, 0}};
    for (const auto& c : conns) fds.push_back({c.get(), POLLIN, 0});
    int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si;
      (void)!::read(sigfd.get(), &si, sizeof si);
      LogLine("faultline-overlay", "signal " + std::to_string(si.ssi_signo) + ": unmounting");
      break;
    }
    std::vector<size_t> closed;
    for (size_t i = 2; i < fds.size() && !stop; ++i) {
      if (fds[i].revents == 0) continue;
      v1::OverlayControl req;
      int got = ReceiveMessage(fds[i].fd, &req, 0);
      if (got <= 0) {
        closed.push_back(i - 2);
        continue;
      }
      if (!SendMessage(fds[i].fd, server->Handle(req, &stop))) closed.push_back(i - 2);
    }
    for (auto it = closed.rbegin(); it != closed.rend(); ++it) conns.erase(conns.begin() + *it);
    if (fds[0].revents & POLLIN) {
      int c = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) conns.emplace_back(c);
    }
  }
  // The socket goes first: no agent attaches to an overlay that is going away.
  {
    sys::UniqueFd dir_fd;
    sockaddr_un addr = Address(o.socket, dir_fd);
    ::unlink(addr.sun_path);
  }
  server->DisarmAll();
  server.reset();  // unmounts
  LogLine("faultline-overlay", "unmounted " + std::string(o.dir.c_str()));
  // Closed only now: a client waiting for the end sees its connection close after the unmount.
  conns.clear();
  return 0;
}

std::shared_ptr<OverlayClient> OverlayClient::Connect(const fs::path& socket) {
  sys::UniqueFd conn(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!conn) ThrowErrno("socket");
  sys::UniqueFd dir_fd;
  sockaddr_un addr = Address(socket, dir_fd);
  if (::connect(conn.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ThrowErrno("connecting to the overlay process at " + socket.string());
  }
  std::shared_ptr<OverlayClient> c(new OverlayClient());
  c->conn_ = std::move(conn);
  c->socket_ = socket;
  c->attached_ = true;
  c->Hello();
  return c;
}

std::shared_ptr<OverlayClient> OverlayClient::Spawn(const fs::path& dir, const fs::path& socket,
                                                    const std::string& server,
                                                    Overlay::Options options) {
  std::error_code ec;
  fs::create_directories(socket.parent_path(), ec);
  if (ec) throw FaultError("overlay: " + socket.parent_path().string() + ": " + ec.message());
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) ThrowErrno("pipe");
  sys::UniqueFd ready_r(ready[0]), ready_w(ready[1]);
  std::vector<std::string> argv = {
      server,     "--dir",         dir.string(),
      "--socket", socket.string(), "--ready-fd",
      "3",        "--max-threads", std::to_string(options.max_threads)};
  if (options.xattr) argv.push_back("--xattr");
  argv.push_back("--workers");
  argv.emplace_back(WorkersName(options.workers));
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::string log = socket.string() + ".log";
  pid_t child = ::fork();
  if (child < 0) ThrowErrno("fork");
  if (child == 0) {
    // Double fork in a session of its own: the overlay process is nobody's child in the agent,
    // and no signal to the agent's process group reaches it.
    ::setsid();
    if (::fork() != 0) _exit(0);
    int null = ::open("/dev/null", O_RDWR);
    int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(err >= 0 ? err : null, 2);
    ::dup2(ready_w.get(), 3);  // without O_CLOEXEC: the one fd it inherits besides 0-2
    // Nothing else of the agent's may live on in it: a listening socket or a lock held by an
    // overlay process would keep the next agent from taking it.
    ::close_range(4, ~0U, 0);
    if (::chdir("/") != 0) _exit(126);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(cargv[0], cargv.data());
    const char msg[] = "error: cannot exec faultline-overlay";
    (void)!::write(ready_w.get(), msg, sizeof msg - 1);
    _exit(127);
  }
  int status;
  ::waitpid(child, &status, 0);
  ready_w.reset();
  std::string said;
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    pollfd p{ready_r.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[512];
    ssize_t n = ::read(ready_r.get(), buf, sizeof buf);
    if (n <= 0) break;
    said.append(buf, static_cast<size_t>(n));
  }
  if (said != "ok") {
    if (said.rfind("error: ", 0) == 0) said = said.substr(7);
    throw FaultError(
        "overlay " + dir.string() + ": " +
        (said.empty() ? "faultline-overlay (" + server + ") said nothing; see " + log : said));
  }
  auto c = Connect(socket);
  c->attached_ = false;
  return c;
}

void OverlayClient::Hello() {
  v1::OverlayControl req;
  req.set_hello(true);
  auto r = Call(req, std::chrono::seconds(5));
  dir_ = r.dir();
  instance_ = r.instance();
  pid_ = r.pid();
}

v1::OverlayReply OverlayClient::Call(const v1::OverlayControl& request,
                                     std::chrono::milliseconds timeout) {
  std::lock_guard lock(mu_);
  std::string where = "overlay process at " + socket_.string();
  if (stopped_) throw FaultError(where + ": stopped");
  if (!SendMessage(conn_.get(), request)) ThrowErrno(where);
  v1::OverlayReply reply;
  int got = ReceiveMessage(conn_.get(), &reply, static_cast<int>(timeout.count()));
  if (got == 0) throw FaultError(where + ": gone");
  if (got < 0) ThrowErrno(where);
  return reply;
}

v1::OverlayReply OverlayClient::State() {
  v1::OverlayControl req;
  req.set_hello(true);
  return Call(req, std::chrono::seconds(20));
}

uint64_t OverlayClient::Arm(const v1::FaultSpec& spec, std::chrono::nanoseconds lease) {
  v1::OverlayControl req;
  *req.mutable_arm()->mutable_spec() = spec;
  ToProto(lease, req.mutable_arm()->mutable_lease());
  auto r = Call(req, std::chrono::seconds(20));
  if (!r.error().empty()) throw FaultError("overlay " + dir_ + ": " + r.error());
  return r.rule_id();
}

bool OverlayClient::Disarm(uint64_t rule_id) {
  v1::OverlayControl req;
  req.set_disarm(rule_id);
  return Call(req, std::chrono::seconds(20)).done();
}

void OverlayClient::Lease(uint64_t rule_id, std::chrono::nanoseconds lease) {
  v1::OverlayControl req;
  req.mutable_lease()->set_rule_id(rule_id);
  ToProto(lease, req.mutable_lease()->mutable_lease());
  auto r = Call(req, std::chrono::seconds(20));
  if (!r.error().empty()) throw FaultError("overlay " + dir_ + ": " + r.error());
}

bool OverlayClient::Crash() {
  v1::OverlayControl req;
  req.set_crash(true);
  return Call(req, std::chrono::seconds(30)).done();
}

void OverlayClient::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
  }
  bool clean = false;
  try {
    v1::OverlayControl req;
    req.set_stop(true);
    Call(req, std::chrono::seconds(20));
    // The process closes the connection once it has unmounted.
    v1::OverlayReply ignored;
    std::lock_guard lock(mu_);
    clean = ReceiveMessage(conn_.get(), &ignored, 20000) == 0;
  } catch (const FaultError&) {
  }
  std::lock_guard lock(mu_);
  stopped_ = true;
  conn_.reset();
  if (clean) return;
  // It did not end by itself: end it and detach whatever it left mounted.
  if (pid_ > 0) ::kill(pid_, SIGKILL);
  for (int i = 0; i < 100 && pid_ > 0 && ::kill(pid_, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (auto m = FindFaultlineMount(dir_); m && !MountServed(dir_)) DetachMount(*m);
}

OverlayManager::OverlayManager(fs::path socket_dir, std::string server)
    : socket_dir_(std::move(socket_dir)), server_(std::move(server)) {}

std::string OverlayManager::Key(const fs::path& dir) {
  std::error_code ec;
  auto c = fs::weakly_canonical(dir, ec);
  return (ec ? dir : c).lexically_normal().string();
}

fs::path OverlayManager::SocketFor(const std::string& key) const {
  return socket_dir_ / ("overlay-" + HashName(key) + ".sock");
}

std::vector<std::string> OverlayManager::Attach() {
  std::vector<std::string> did;
  std::error_code ec;
  if (!fs::is_directory(socket_dir_, ec)) return did;
  for (const auto& entry : fs::directory_iterator(socket_dir_, ec)) {
    const auto& p = entry.path();
    if (p.extension() != ".sock" || p.filename().string().rfind("overlay-", 0) != 0) continue;
    try {
      auto c = OverlayClient::Connect(p);
      std::lock_guard lock(mu_);
      overlays_[Key(c->dir())] = c;
      did.push_back("attached to the overlay process (pid " + std::to_string(c->pid()) +
                    ") serving " + c->dir() + " with " + std::to_string(c->State().rules_size()) +
                    " rule(s)");
    } catch (const std::exception& e) {
      // Nobody serves it any more (the overlay process was killed).
      fs::remove(p, ec);
      did.push_back("removed the socket of a dead overlay process: " + p.string());
    }
  }
  return did;
}

std::shared_ptr<OverlayClient> OverlayManager::Mount(const fs::path& dir,
                                                     Overlay::Options options) {
  std::lock_guard lock(mu_);
  auto key = Key(dir);
  if (auto it = overlays_.find(key); it != overlays_.end()) return it->second;
  auto socket = SocketFor(key);
  // Ours from an earlier agent, still serving: attach.
  try {
    auto c = OverlayClient::Connect(socket);
    if (Key(c->dir()) == key) return overlays_[key] = c;
  } catch (const FaultError&) {
  }
  // A faultline mount here that is not ours: left by a crashed daemon (clear it), or served by
  // another live process (refuse rather than stack on it).
  if (auto m = FindFaultlineMount(key)) {
    if (MountServed(key)) {
      throw FaultError("overlay " + key + ": another process serves a faultline overlay there");
    }
    DetachMount(*m);
  }
  return overlays_[key] = OverlayClient::Spawn(key, socket, server_, options);
}

bool OverlayManager::Unmount(const fs::path& dir) {
  std::shared_ptr<OverlayClient> ov;
  {
    std::lock_guard lock(mu_);
    auto it = overlays_.find(Key(dir));
    if (it == overlays_.end()) return false;
    ov = std::move(it->second);
    overlays_.erase(it);
  }
  ov->Stop();
  return true;
}

std::shared_ptr<OverlayClient> OverlayManager::Find(const fs::path& dir) const {
  std::lock_guard lock(mu_);
  auto it = overlays_.find(Key(dir));
  return it == overlays_.end() ? nullptr : it->second;
}

std::vector<std::string> OverlayManager::Mounts() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (auto& [k, v] : overlays_) out.push_back(k);
  return out;
}

std::vector<std::string> OverlayManager::Sweep() const { return SweepStaleMounts(Mounts()); }

std::vector<std::string> OverlayManager::UnmountIdle() {
  std::map<std::string, std::shared_ptr<OverlayClient>> all;
  {
    std::lock_guard lock(mu_);
    all.swap(overlays_);
  }
  std::vector<std::string> did;
  for (auto& [dir, ov] : all) {
    // The overlay process holds the backing directory itself: it is not a user.
    std::vector<pid_t> users = MountUsers(ov->dir(), {ov->pid()});
    if (users.empty()) {
      ov->Stop();
      did.push_back("ended the overlay process (pid " + std::to_string(ov->pid()) +
                    "), nothing used " + dir);
      continue;
    }
    std::string pids;
    for (pid_t p : users) pids += (pids.empty() ? "" : ", ") + std::to_string(p);
    did.push_back("left the overlay process (pid " + std::to_string(ov->pid()) + ") serving " +
                  dir + " with " + std::to_string(ov->State().rules_size()) +
                  " rule(s): in use by pid " + pids + "; the next agent attaches to it");
    std::lock_guard lock(mu_);
    overlays_[dir] = ov;
  }
  return did;
}

std::vector<std::string> OverlayManager::UnmountAll() {
  std::map<std::string, std::shared_ptr<OverlayClient>> all;
  {
    std::lock_guard lock(mu_);
    all.swap(overlays_);
  }
  std::vector<std::string> did;
  for (auto& [dir, ov] : all) {
    ov->Stop();
    did.push_back("ended the overlay process (pid " + std::to_string(ov->pid()) + ") serving " +
                  dir);
  }
  return did;
}

}  // namespace faultline::faults::io
