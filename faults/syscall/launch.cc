#include "faults/syscall/launch.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

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

void NotifyChannel::PrepareChild() const { ::fcntl(child_.get(), F_SETFD, 0); }

UniqueFd NotifyChannel::Receive(std::chrono::milliseconds timeout) {
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
  UniqueFd mem(static_cast<int>(::syscall(SYS_memfd_create, "faultline-notify-bpf", MFD_CLOEXEC)));
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

UniqueFd ReceiveFd(int socket, std::chrono::milliseconds timeout, char* tag) {
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
  return UniqueFd(fd);
}

}  // namespace faultline::faults::syscalls
