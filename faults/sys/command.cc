#include "faults/sys/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "faults/sys/error.h"
#include "faults/sys/unique_fd.h"

namespace faultline::sys {

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  int outp[2], errp[2];
  if (::pipe2(outp, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  sys::UniqueFd out_r(outp[0]), out_w(outp[1]);
  if (::pipe2(errp, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  sys::UniqueFd err_r(errp[0]), err_w(errp[1]);
  std::vector<std::string> store = argv;
  std::vector<char*> cargv;
  for (auto& a : store) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) ThrowErrno("fork");
  if (pid == 0) {
    ::dup2(out_w.get(), 1);
    ::dup2(err_w.get(), 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }
  out_w.reset();
  err_w.reset();
  CommandResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool killed = false;
  char buf[4096];
  while (out_r || err_r) {
    pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    int n = ::poll(fds, 2, static_cast<int>(std::max<long>(left.count(), 0)));
    if (n == 0) {
      ::kill(pid, SIGKILL);  // our own unreaped child
      killed = true;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
      if (got <= 0) {
        (i == 0 ? out_r : err_r).reset();
      } else {
        (i == 0 ? r.out : r.err).append(buf, got);
      }
    }
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  r.exit_code = (!killed && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace faultline::sys
