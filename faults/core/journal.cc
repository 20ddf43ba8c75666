#include "faults/core/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <string>

#include "faults/core/errors.h"

namespace faultline::faults {
namespace {

constexpr uint32_t kMaxRecord = 64u << 20;

void WriteAll(int fd, const char* data, size_t n, const std::string& what) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(what);
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
}

void FsyncDir(const std::filesystem::path& dir) {
  sys::UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d || ::fsync(d.get()) != 0) ThrowErrno("fsync " + dir.string());
}

std::string ReadFile(int fd) {
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t r = ::pread(fd, buf, sizeof buf, static_cast<off_t>(data.size()));
    if (r < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("read journal");
    }
    if (r == 0) break;
    data.append(buf, static_cast<size_t>(r));
  }
  return data;
}

uint32_t Crc(const std::string& payload) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size())));
}

}  // namespace

Journal::Journal(const std::filesystem::path& dir) : dir_(dir), path_(dir / "journal.log") {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw FaultError("create state dir " + dir_.string() + ": " + ec.message());
  fd_.reset(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd_) ThrowErrno("open " + path_.string());
  if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      throw FaultError("state dir " + dir_.string() + " is in use by another faultline-agent");
    }
    ThrowErrno("lock " + path_.string());
  }
  std::string data = ReadFile(fd_.get());
  size_t pos = 0;
  while (data.size() - pos >= 8) {
    uint32_t len, crc;
    std::memcpy(&len, data.data() + pos, 4);
    std::memcpy(&crc, data.data() + pos + 4, 4);
    if (len > kMaxRecord || data.size() - pos - 8 < len) break;
    std::string payload = data.substr(pos + 8, len);
    v1::JournalRecord rec;
    if (Crc(payload) != crc || !rec.ParseFromString(payload)) break;
    next_seq_ = std::max(next_seq_, rec.seq() + 1);
    replayed_.push_back(std::move(rec));
    pos += 8 + len;
  }
  torn_bytes_ = data.size() - pos;
  if (torn_bytes_ > 0) {
    if (::ftruncate(fd_.get(), static_cast<off_t>(pos)) != 0) ThrowErrno("truncate torn journal");
    if (::fdatasync(fd_.get()) != 0) ThrowErrno("fdatasync journal");
  }
  if (::lseek(fd_.get(), 0, SEEK_END) < 0) ThrowErrno("seek journal");
}

void Journal::WriteRecord(int fd, const v1::JournalRecord& record) {
  std::string payload;
  record.SerializeToString(&payload);
  std::string frame(8, '\0');
  auto len = static_cast<uint32_t>(payload.size());
  uint32_t crc = Crc(payload);
  std::memcpy(frame.data(), &len, 4);
  std::memcpy(frame.data() + 4, &crc, 4);
  frame += payload;
  WriteAll(fd, frame.data(), frame.size(), "write journal");
}

void Journal::Append(v1::JournalRecord record) {
  std::lock_guard lock(mu_);
  record.set_seq(next_seq_++);
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
  record.mutable_time()->set_seconds(ns / 1'000'000'000);
  record.mutable_time()->set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
  WriteRecord(fd_.get(), record);
  if (::fdatasync(fd_.get()) != 0) ThrowErrno("fdatasync journal");
}

void Journal::Compact(const std::vector<v1::JournalRecord>& keep) {
  std::lock_guard lock(mu_);
  auto tmp = dir_ / "journal.log.tmp";
  sys::UniqueFd t(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!t) ThrowErrno("open " + tmp.string());
  for (const auto& r : keep) WriteRecord(t.get(), r);
  if (::fsync(t.get()) != 0) ThrowErrno("fsync " + tmp.string());
  if (::rename(tmp.c_str(), path_.c_str()) != 0) ThrowErrno("rename journal");
  FsyncDir(dir_);
  // The lock lives on the open file description; take it on the new file before dropping the old.
  sys::UniqueFd fresh(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
  if (!fresh) ThrowErrno("reopen journal");
  if (::flock(fresh.get(), LOCK_EX | LOCK_NB) != 0) ThrowErrno("lock journal");
  if (::lseek(fresh.get(), 0, SEEK_END) < 0) ThrowErrno("seek journal");
  fd_ = std::move(fresh);
}

std::vector<v1::JournalRecord> Journal::Outstanding(const std::vector<v1::JournalRecord>& records) {
  std::map<std::string, v1::JournalRecord> open;  // by fault id
  std::vector<std::string> order;
  for (const auto& r : records) {
    switch (r.op()) {
      case v1::JournalRecord::INTENT_APPLY:
        if (!open.contains(r.fault_id())) order.push_back(r.fault_id());
        open[r.fault_id()] = r;
        break;
      case v1::JournalRecord::REVERTED:
        open.erase(r.fault_id());
        break;
      default: {
        auto it = open.find(r.fault_id());
        if (it != open.end() && !r.state().empty() && r.state() != "{}") {
          it->second.set_state(r.state());
        }
        break;
      }
    }
  }
  std::vector<v1::JournalRecord> out;
  for (const auto& id : order) {
    auto it = open.find(id);
    if (it != open.end()) out.push_back(it->second);
  }
  return out;
}

}  // namespace faultline::faults
