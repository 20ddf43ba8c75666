// The managed child of the syscall tests: measures its own fsync/fdatasync results and latency.
// stdin: "fsync N" or "fdatasync N"; stdout, one line per command:
// "ok=… eio=… other=… mean_us=… max_us=…". Exits on EOF.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "/tmp/faultline-fsync-probe";
  int fd = open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror("open");
    return 1;
  }
  char cmd[32];
  long n;
  while (std::scanf("%31s %ld", cmd, &n) == 2) {
    const bool data = std::strcmp(cmd, "fdatasync") == 0;
    long ok = 0, eio = 0, other = 0;
    double total_us = 0, max_us = 0;
    for (long i = 0; i < n; ++i) {
      if (pwrite(fd, "x", 1, i % 4096) != 1) ++other;
      auto t0 = std::chrono::steady_clock::now();
      int rc = data ? fdatasync(fd) : fsync(fd);
      int err = errno;
      double us =
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      total_us += us;
      if (us > max_us) max_us = us;
      if (rc == 0) {
        ++ok;
      } else if (err == EIO) {
        ++eio;
      } else {
        ++other;
      }
    }
    std::printf("ok=%ld eio=%ld other=%ld mean_us=%.1f max_us=%.1f\n", ok, eio, other,
                n > 0 ? total_us / static_cast<double>(n) : 0.0, max_us);
    std::fflush(stdout);
  }
  close(fd);
  unlink(path);
  return 0;
}
