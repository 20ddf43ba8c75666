// faultline-overlay --dir DIR --socket PATH [--ready-fd N] [--max-threads N] [--xattr]
//                   [--workers ordinary|while-delaying|realtime]
// Serves one faultline IO overlay over DIR in a process of its own, controlled by the agent over
// the unix socket PATH (faults/io/overlay_process.h), so the overlay outlives its agent. Started
// by the agent; runs until the agent asks it to stop, or SIGTERM/SIGINT.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "faults/io/overlay_process.h"

int main(int argc, char** argv) {
  faultline::faults::io::ServeOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--dir" && has_value) {
      o.dir = argv[++i];
    } else if (a == "--socket" && has_value) {
      o.socket = argv[++i];
    } else if (a == "--ready-fd" && has_value) {
      o.ready_fd = std::atoi(argv[++i]);
    } else if (a == "--max-threads" && has_value) {
      o.overlay.max_threads = std::atoi(argv[++i]);
    } else if (a == "--xattr") {
      o.overlay.xattr = true;
    } else if (a == "--workers" && has_value) {
      auto w = faultline::faults::io::ParseWorkers(argv[++i]);
      if (!w) {
        std::fprintf(stderr,
                     "faultline-overlay: --workers: \"%s\" is not one of ordinary, "
                     "while-delaying, realtime\n",
                     argv[i]);
        return 2;
      }
      o.overlay.workers = *w;
    } else {
      std::fprintf(stderr, "faultline-overlay: unknown argument \"%s\"\n", a.c_str());
      return 2;
    }
  }
  if (o.dir.empty() || o.socket.empty() || o.overlay.max_threads <= 0) {
    std::fprintf(stderr,
                 "usage: faultline-overlay --dir DIR --socket PATH [--ready-fd N] "
                 "[--max-threads N] [--xattr] [--workers ordinary|while-delaying|realtime]\n");
    return 2;
  }
  return faultline::faults::io::ServeOverlay(o);
}
