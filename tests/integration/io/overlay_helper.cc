// Holds a faultline overlay for the crash test: mounts DIR, arms an errno EIO rule on writes
// of "*.armed", says "ready" on stdout and waits to be killed.
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "faults/io/overlay.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  faultline::faults::io::Overlay overlay(argv[1]);
  faultline::faults::io::RuleSpec spec;
  spec.kind = faultline::faults::io::RuleKind::kErrno;
  spec.path_glob = "*.armed";
  spec.methods = faultline::faults::io::Bit(faultline::faults::io::Method::kWrite);
  spec.errnos = {{EIO, 1}};
  overlay.Arm(spec);
  printf("ready\n");
  fflush(stdout);
  while (true) pause();
}
