// Holds a faultline overlay for the tests that need it in another process: mounts DIR, arms an
// errno EIO rule on writes of "*.armed", says "ready" on stdout and waits. SIGTERM/SIGINT unmount
// cleanly; SIGKILL leaves a dead mount behind, which is what the crash test wants.
//
// With a second argument MS it also arms a latency rule of MS ms on fdatasync of "*.slow", says
// how its release thread is scheduled ("ready realtime=1 probe=1 detail=...") and, on SIGTERM,
// how late the releases were ("late_samples=N late_max_us=M") before it unmounts. The release
// tests run it without CAP_SYS_NICE or SIGSTOP it while a reply is held.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "faults/core/registry.h"
#include "faults/io/io_faults.h"
#include "faults/io/overlay.h"

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: %s DIR [LATENCY_MS]\n", argv[0]);
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
  std::shared_ptr<io::Rule> slow;
  if (argc == 3) {
    io::RuleSpec s;
    s.kind = io::RuleKind::kLatency;
    s.path_glob = "*.slow";
    s.methods = io::Bit(io::Method::kFdatasync);
    s.delay = std::chrono::milliseconds(std::stoi(argv[2]));
    slow = overlay.Arm(s);
    // What `faultline status` would say: the family's capability probe and the live thread.
    faultline::faults::Registry registry;
    // Only the family's probe is asked: the manager never starts an overlay process here.
    io::OverlayManager manager(std::filesystem::temp_directory_path());
    io::RegisterIoFaults(registry, manager);
    const bool probe = registry.Find("io")->Probe().at("realtime_release").first;
    printf("ready realtime=%d probe=%d detail=%s\n", overlay.ReleaseScheduling().realtime ? 1 : 0,
           probe ? 1 : 0, overlay.ReleaseScheduling().detail.c_str());
  } else {
    printf("ready\n");
  }
  fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  if (slow) {
    auto s = slow->lateness().Summarize();
    printf("late_samples=%lld late_max_us=%lld\n", static_cast<long long>(s.count),
           static_cast<long long>(s.max_ns / 1000));
    fflush(stdout);
  }
  return 0;
}
