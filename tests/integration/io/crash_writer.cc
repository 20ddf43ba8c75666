// The "small program" of the crash tests: writes to files under an overlay the way an
// application would, then says "done" and waits to be killed.
//   crash_writer [--sync] [--at OFFSET] FILE DATA [FILE DATA ...]
// Each FILE is opened (created if missing) and DATA written at OFFSET (default: appended to
// what this program wrote to it before, from 0); with --sync each write is followed by fsync.
// Files stay open until the end, as an application's would.
// Exit status 3 names a failed syscall on stderr.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

int main(int argc, char** argv) {
  bool sync = false;
  long at = -1;
  std::map<std::string, off_t> next;
  std::map<std::string, int> fds;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--sync") {
      sync = true;
      continue;
    }
    if (a == "--at" && i + 1 < argc) {
      at = strtol(argv[++i], nullptr, 10);
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "usage: crash_writer [--sync] [--at OFF] FILE DATA ...\n");
      return 2;
    }
    std::string file = a, data = argv[++i];
    int& fd = fds[file];
    if (fd == 0) fd = open(file.c_str(), O_WRONLY | O_CREAT, 0644);
    if (fd < 0) {
      fprintf(stderr, "open %s: %s\n", file.c_str(), strerror(errno));
      return 3;
    }
    off_t off = at >= 0 ? at : next[file];
    if (pwrite(fd, data.data(), data.size(), off) != static_cast<ssize_t>(data.size())) {
      fprintf(stderr, "write %s: %s\n", file.c_str(), strerror(errno));
      return 3;
    }
    next[file] = off + static_cast<off_t>(data.size());
    if (sync && fsync(fd) != 0) {
      fprintf(stderr, "fsync %s: %s\n", file.c_str(), strerror(errno));
      return 3;
    }
    at = -1;
  }
  printf("done\n");
  fflush(stdout);
  for (;;) pause();
}
