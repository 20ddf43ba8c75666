// Holds a faultline overlay for the crash test: mounts DIR, arms an errno EIO rule on writes
// of "*.armed", says "ready" on stdout and waits. SIGTERM/SIGINT unmount cleanly; SIGKILL
// leaves a dead mount behind, which is what the crash test wants.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "faults/io/overlay.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  // Blocked before the FUSE threads start, so they inherit the mask and sigwait gets them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  namespace io = faultline::faults::io;
  io::Overlay overlay(argv[1]);
  io::RuleSpec spec;
  spec.kind = io::RuleKind::kErrno;
  spec.path_glob = "*.armed";
  spec.methods = io::Bit(io::Method::kWrite);
  spec.errnos = {{EIO, 1}};
  overlay.Arm(spec);
  printf("ready\n");
  fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}
