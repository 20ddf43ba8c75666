#include "faults/syscall/launch.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "faults/core/errors.h"
#include "faults/syscall/interceptor.h"

namespace faultline::faults::syscalls {

std::string LoaderPath() {
  if (const char* env = std::getenv("FAULTLINE_SECCOMP_EXEC"); env != nullptr && *env != 0) {
    return env;
  }
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "faultline-seccomp-exec";
  return (self.parent_path() / "faultline-seccomp-exec").string();
}

NotifyChannel::NotifyChannel() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    ThrowErrno("socketpair for the seccomp listener");
  }
  parent_.reset(sv[0]);
  child_.reset(sv[1]);
}

std::vector<std::string> NotifyChannel::WrapArgv(const std::vector<std::string>& argv,
                                                 const std::vector<std::string>& syscalls,
                                                 const std::string& loader) const {
  std::string list;
  for (const auto& s : syscalls) list += (list.empty() ? "" : ",") + s;
  std::vector<std::string> out{loader,       "--fd", std::to_string(child_.get()),
                               "--syscalls", list,   "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::vector<std::string> NotifyChannel::WrapArgvWithKeeper(const std::vector<std::string>& argv,
                                                           const std::vector<std::string>& syscalls,
                                                           const std::string& keeper_path,
                                                           const std::string& loader) {
  std::string list;
  for (const auto& s : syscalls) list += (list.empty() ? "" : ",") + s;
  std::vector<std::string> out{loader, "--keeper", keeper_path, "--syscalls", list, "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

void NotifyChannel::PrepareChild() const { ::fcntl(child_.get(), F_SETFD, 0); }

sys::UniqueFd NotifyChannel::Receive(std::chrono::milliseconds timeout) {
  child_.reset();
  char tag = 0;
  return ReceiveFd(parent_.get(), timeout, &tag);
}

int InstallNotifyFilter(const std::vector<std::string>& syscalls, bool* wait_killable) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) throw FaultError("seccomp_init failed");
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};
  // Calls of another ABI (int 0x80) are left alone rather than killing the process.
  seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW);
  for (const auto& name : syscalls) {
    auto nr = ResolveSyscall(name);
    if (!nr) throw FaultError("unknown syscall \"" + name + "\"");
    if (NeverIntercepted(name)) throw FaultError("syscall \"" + name + "\" cannot be intercepted");
    int rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, *nr, 0);
    if (rc != 0) ThrowErrno("seccomp_rule_add(" + name + ")", -rc);
  }
  // libseccomp 2.5 cannot ask for WAIT_KILLABLE_RECV, so the program is exported and loaded
  // with seccomp(2) directly.
  sys::UniqueFd mem(
      static_cast<int>(::syscall(SYS_memfd_create, "faultline-notify-bpf", MFD_CLOEXEC)));
  if (!mem) ThrowErrno("memfd_create");
  int rc = seccomp_export_bpf(ctx, mem.get());
  if (rc != 0) ThrowErrno("seccomp_export_bpf", -rc);
  off_t size = ::lseek(mem.get(), 0, SEEK_END);
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  if (size <= 0 || ::pread(mem.get(), prog.data(), static_cast<size_t>(size), 0) != size) {
    ThrowErrno("reading the exported seccomp filter");
  }
  sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ThrowErrno("prctl(PR_SET_NO_NEW_PRIVS)");
  long fd =
      ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &fprog);
  *wait_killable = fd >= 0;
  if (fd < 0 && errno == EINVAL) {
    fd = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fprog);
  }
  if (fd < 0) ThrowErrno("seccomp(SECCOMP_SET_MODE_FILTER, NEW_LISTENER)");
  return static_cast<int>(fd);
}

void SendFd(int socket, int fd, char tag) {
  char payload = tag;
  iovec iov{&payload, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (::sendmsg(socket, &msg, MSG_NOSIGNAL) != 1) ThrowErrno("sendmsg(SCM_RIGHTS)");
}

sys::UniqueFd ReceiveFd(int socket, std::chrono::milliseconds timeout, char* tag) {
  pollfd p{socket, POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  } while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno("poll on the seccomp listener channel");
  if (n == 0)
    throw FaultError("faultline-seccomp-exec sent no listener within " +
                     std::to_string(timeout.count()) + "ms");
  char payload = 0;
  iovec iov{&payload, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t got = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  if (got < 0) ThrowErrno("recvmsg(SCM_RIGHTS)");
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (got == 0 || c == nullptr || c->cmsg_type != SCM_RIGHTS) {
    throw FaultError(
        "faultline-seccomp-exec exited before handing over its seccomp listener (see its stderr)");
  }
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
  if (tag != nullptr) *tag = payload;
  return sys::UniqueFd(fd);
}

namespace {

sockaddr_un UnixAddress(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) throw FaultError("socket path too long: " + path);
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

// Answers one pending notification with "continue" (the kernel runs the call as made).
void ContinueOne(int listener) {
  seccomp_notif req;
  std::memset(&req, 0, sizeof req);
  if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) return;
  seccomp_notif_resp resp{};
  resp.id = req.id;
  resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  ::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

void ContinueId(int listener, uint64_t id) {
  seccomp_notif_resp resp{};
  resp.id = id;
  resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  ::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

[[noreturn]] void KeeperMain(int handover, int server, const std::string& path) {
  ::signal(SIGPIPE, SIG_IGN);
  sys::UniqueFd listener;
  try {
    listener = ReceiveFd(handover, std::chrono::seconds(30), nullptr);
  } catch (const std::exception&) {
    ::unlink(path.c_str());
    _exit(1);
  }
  ::close(handover);
  int attached = -1;
  std::set<uint64_t> held;  // calls the attached agent holds (it tells us), answered if it dies
  // The agent also reports a recent notification id now and then ('R'). Ids are sequential, so
  // the calls it had received but not yet answered when it died lie just after that one.
  bool have_recent = false;
  uint64_t recent = 0;
  while (true) {
    pollfd fds[3] = {{listener.get(), static_cast<short>(attached < 0 ? POLLIN : 0), 0},
                     {server, POLLIN, 0},
                     {attached, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if ((fds[0].revents & POLLIN) != 0) {
      ContinueOne(listener.get());
    } else if ((fds[0].revents & (POLLHUP | POLLERR)) != 0) {
      break;  // the process and all its children are gone
    }
    if ((fds[1].revents & POLLIN) != 0) {
      int conn = ::accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn >= 0 && attached >= 0) {
        ::close(conn);  // one agent at a time
      } else if (conn >= 0) {
        try {
          SendFd(conn, listener.get(), 'L');
          attached = conn;
        } catch (const std::exception&) {
          ::close(conn);
        }
      }
    }
    if (attached >= 0 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char msg[9];
      ssize_t n = ::recv(attached, msg, sizeof msg, 0);
      if (n == static_cast<ssize_t>(sizeof msg)) {
        uint64_t id;
        std::memcpy(&id, msg + 1, sizeof id);
        if (msg[0] == 'H') held.insert(id);
        if (msg[0] == 'D') held.erase(id);
        if (msg[0] == 'R') {
          have_recent = true;
          recent = id;
        }
      } else {
        // The agent is gone: release what it held and what it had received but not answered
        // (the kernel accepts a reply only for a call that was received and is still unanswered,
        // so answering a range of ids touches nothing else), then answer from here on.
        for (uint64_t id : held) ContinueId(listener.get(), id);
        held.clear();
        if (have_recent) {
          for (uint64_t id = recent - 128; id != recent + 4096; ++id)
            ContinueId(listener.get(), id);
        }
        have_recent = false;
        ::close(attached);
        attached = -1;
      }
    }
  }
  ::unlink(path.c_str());
  _exit(0);
}

}  // namespace

sys::UniqueFd StartKeeper(const std::string& path) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) ThrowErrno("socketpair");
  sys::UniqueFd mine(sv[0]), theirs(sv[1]);
  sys::UniqueFd server(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!server) ThrowErrno("socket");
  ::unlink(path.c_str());
  sockaddr_un addr = UnixAddress(path);
  if (::bind(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ThrowErrno("bind " + path);
  }
  if (::listen(server.get(), 4) != 0) ThrowErrno("listen " + path);
  pid_t child = ::fork();
  if (child < 0) ThrowErrno("fork");
  if (child == 0) {
    // Double fork: the keeper must not be a child of the program we exec (it would never be
    // reaped) and lives in a session of its own.
    ::setsid();
    if (::fork() != 0) _exit(0);
    int keep_a = theirs.get(), keep_b = server.get();
    for (int fd = 0; fd < 1024; ++fd) {
      if (fd != keep_a && fd != keep_b) ::close(fd);
    }
    KeeperMain(keep_a, keep_b, path);
  }
  int status;
  ::waitpid(child, &status, 0);
  return mine;
}

KeeperAttachment AttachKeeper(const std::string& path, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  sockaddr_un addr = UnixAddress(path);
  while (true) {
    sys::UniqueFd conn(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!conn) ThrowErrno("socket");
    if (::connect(conn.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      KeeperAttachment a;
      a.listener = ReceiveFd(conn.get(), std::max(left, std::chrono::milliseconds(100)), nullptr);
      a.connection = std::move(conn);
      return a;
    }
    if ((errno != ENOENT && errno != ECONNREFUSED) || std::chrono::steady_clock::now() > deadline) {
      ThrowErrno("connecting to the seccomp keeper at " + path);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace faultline::faults::syscalls
