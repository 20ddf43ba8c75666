#include "faults/process/output_excerpt.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "faults/sys/unique_fd.h"

namespace faultline::faults::process {

namespace {

// Output scanned for fatal lines: the start of it (where a panic's first line is, before its
// goroutine dump) and the end (a panic after a long run). Between them is skipped.
constexpr size_t kScanHead = 16 << 20;
constexpr size_t kScanTail = 16 << 20;
constexpr size_t kMaxLine = 512;

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// "SIGSEGV: segmentation violation", "SIGABRT: abort", "SIGQUIT: quit": Go's fatal signal header.
bool IsSignalHeader(std::string_view line) {
  if (!StartsWith(line, "SIG")) return false;
  size_t i = 3;
  while (i < line.size() && std::isupper(static_cast<unsigned char>(line[i]))) ++i;
  return i > 3 && line.substr(i, 2) == ": ";
}

void Scan(std::string_view text, OutputExcerpt* out, size_t max_fatal) {
  size_t pos = 0;
  while (pos < text.size() && out->fatal_lines.size() < max_fatal) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
    if (IsFatalLine(line)) out->fatal_lines.emplace_back(line.substr(0, kMaxLine));
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
}

std::string ReadAt(int fd, off_t at, size_t n) {
  std::string buf(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, buf.data() + got, n - got, at + static_cast<off_t>(got));
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  buf.resize(got);
  return buf;
}

}  // namespace

bool IsFatalLine(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (StartsWith(line, "panic: ") || StartsWith(line, "fatal error: ") || IsSignalHeader(line)) {
    return true;
  }
  // zap, JSON and console encodings.
  for (std::string_view level : {"\"level\":\"panic\"", "\"level\":\"fatal\"",
                                 "\"level\":\"dpanic\"", "\tPANIC\t", "\tFATAL\t", "\tDPANIC\t"}) {
    if (line.find(level) != std::string_view::npos) return true;
  }
  // capnslog: "2024-01-02 03:04:05.678901 C | etcdserver: ..."
  return line.find(" C | ") != std::string_view::npos;
}

OutputExcerpt ReadOutputExcerpt(const std::string& path, off_t from, size_t tail_bytes,
                                size_t max_fatal_lines) {
  OutputExcerpt out;
  if (path.empty()) return out;
  sys::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) return out;
  // A log truncated or replaced since the process started: read all of it.
  if (from < 0 || from > st.st_size) from = 0;
  const size_t size = static_cast<size_t>(st.st_size - from);
  out.bytes = size;
  if (size <= kScanHead + kScanTail) {
    Scan(ReadAt(fd.get(), from, size), &out, max_fatal_lines);
  } else {
    out.scanned_all = false;
    Scan(ReadAt(fd.get(), from, kScanHead), &out, max_fatal_lines);
    Scan(ReadAt(fd.get(), st.st_size - static_cast<off_t>(kScanTail), kScanTail), &out,
         max_fatal_lines);
  }
  size_t n = std::min(size, tail_bytes);
  out.tail = ReadAt(fd.get(), st.st_size - static_cast<off_t>(n), n);
  // Start the tail at a line: a cut line helps nobody.
  if (n < size) {
    size_t nl = out.tail.find('\n');
    if (nl != std::string::npos && nl + 1 < out.tail.size()) out.tail.erase(0, nl + 1);
  }
  return out;
}

}  // namespace faultline::faults::process
