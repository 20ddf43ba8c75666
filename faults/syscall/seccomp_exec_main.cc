// faultline-seccomp-exec (--fd N | --keeper PATH) --syscalls a,b,c -- PROGRAM ARGS...
// Installs a seccomp filter that hands the named syscalls to a listener, sends the listener to
// the agent over the unix socket N (or leaves it with a keeper process serving PATH, so the
// program outlives the agent; see launch.h), and execs PROGRAM, which (and whose children) run
// under the filter from their first instruction. Kept tiny: it runs inside every managed process's
// start.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "faults/syscall/launch.h"

int main(int argc, char** argv) {
  int fd = -1;
  std::string keeper;
  std::vector<std::string> syscalls;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a == "--fd" && i + 1 < argc) {
      fd = std::atoi(argv[++i]);
    } else if (a == "--keeper" && i + 1 < argc) {
      keeper = argv[++i];
    } else if (a == "--syscalls" && i + 1 < argc) {
      std::stringstream ss(argv[++i]);
      std::string s;
      while (std::getline(ss, s, ',')) {
        if (!s.empty()) syscalls.push_back(s);
      }
    } else {
      std::fprintf(stderr, "faultline-seccomp-exec: unknown argument \"%s\"\n", a.c_str());
      return 2;
    }
  }
  if ((fd < 0) == keeper.empty() || syscalls.empty() || i >= argc) {
    std::fprintf(
        stderr,
        "usage: faultline-seccomp-exec (--fd N | --keeper PATH) --syscalls a,b,c -- PROGRAM "
        "[ARGS...]\n");
    return 2;
  }
  try {
    // The keeper starts before the filter exists, so it is not under it.
    faultline::sys::UniqueFd to_keeper;
    if (!keeper.empty()) {
      to_keeper = faultline::faults::syscalls::StartKeeper(keeper);
      fd = to_keeper.get();
    }
    bool wait_killable = false;
    int listener = faultline::faults::syscalls::InstallNotifyFilter(syscalls, &wait_killable);
    faultline::faults::syscalls::SendFd(fd, listener, wait_killable ? 'K' : 'k');
    ::close(listener);
    if (keeper.empty()) ::close(fd);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "faultline-seccomp-exec: %s\n", e.what());
    return 126;
  }
  ::execvp(argv[i], argv + i);
  std::fprintf(stderr, "faultline-seccomp-exec: exec %s: %s\n", argv[i], std::strerror(errno));
  return 127;
}
