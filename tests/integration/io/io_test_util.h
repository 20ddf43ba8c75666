#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/subprocess.h"

namespace faultline::io_test {

// A fresh directory on the real disk (/var/tmp, not tmpfs), removed on destruction.
class TempDir : public testing::TempDir {
 public:
  explicit TempDir(const std::string& tag)
      : testing::TempDir("faultline-io-" + tag + "-" + std::to_string(::getpid()), "/var/tmp") {}
};

// The support library's child process, reaper and free port (tests/support/subprocess.h).
using Child = testing::Subprocess;
using testing::FreePort;
using testing::WaitFor;

// Everything in the file `rel` under the directory fd `dirfd` (AT_FDCWD: a path), or
// "<strerror>" if it cannot be opened.
inline std::string ReadAll(int dirfd, const std::string& rel) {
  int fd = ::openat(dirfd, rel.c_str(), O_RDONLY);
  if (fd < 0) return "<" + std::string(strerror(errno)) + ">";
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

inline std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string Run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

inline double Millis(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace faultline::io_test
