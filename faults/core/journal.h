#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <vector>

#include "faultline/v1/fault.pb.h"
#include "faults/core/errors.h"
#include "faults/sys/unique_fd.h"

namespace faultline::faults {

// The agent's write-ahead journal: what it is about to change is on disk (fdatasync) before it
// changes it, so an agent killed at any instant can revert from this file alone.
//
// File format: a sequence of records, each `u32 length | u32 crc32(payload) | payload`, the
// payload a serialized v1::JournalRecord. A crash mid-append leaves a torn last record; it is
// detected by length or checksum and cut off at open. The file is locked (flock) so two agents
// never share a state directory.
class Journal {
 public:
  // Opens or creates DIR/journal.log and reads every intact record.
  explicit Journal(const std::filesystem::path& dir);

  // Records read at open, in order.
  const std::vector<v1::JournalRecord>& replayed() const { return replayed_; }
  // Bytes of torn tail dropped at open (0 if the file ended cleanly).
  uint64_t torn_bytes() const { return torn_bytes_; }

  // Assigns seq and time, appends, and makes it durable before returning. Thread-safe.
  void Append(v1::JournalRecord record);

  // Atomically replaces the journal with `keep` (temp file, fsync, rename, fsync dir).
  void Compact(const std::vector<v1::JournalRecord>& keep);

  const std::filesystem::path& path() const { return path_; }

  // Faults whose last record is not REVERTED: one record each, carrying the spec of its
  // INTENT_APPLY and the newest non-empty state.
  static std::vector<v1::JournalRecord> Outstanding(const std::vector<v1::JournalRecord>& records);

 private:
  void WriteRecord(int fd, const v1::JournalRecord& record);

  std::filesystem::path dir_;
  std::filesystem::path path_;
  sys::UniqueFd fd_;
  std::mutex mu_;
  uint64_t next_seq_ = 1;
  uint64_t torn_bytes_ = 0;
  std::vector<v1::JournalRecord> replayed_;
};

}  // namespace faultline::faults
