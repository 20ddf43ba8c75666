#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "controller/verify/history.h"

namespace faultline::verify {

// The changes a history proves happened, per key and revision, shared by the checks that compare
// what etcd showed with what happened (watch guarantees, past reads, lists): acknowledged writes,
// deletes of a revoked lease's keys at the revocation's revision, and every event (and prev_kv)
// a watcher received. Acknowledged writes go in first, so a watcher that disagrees with one is
// the one found wrong.
class ProvenChanges {
 public:
  struct Change {
    int64_t rev = 0;
    uint32_t key = 0;
    bool del = false;
    std::string_view value;
    const Op* op = nullptr;               // acknowledged write
    const AdminOp* revoke = nullptr;      // lease revocation
    const WatchEvent* seen = nullptr;     // the first watcher event that showed it
    const WatchEvent* prev_of = nullptr;  // known as the prev_kv of this event
    const Op* read_by = nullptr;          // known from a read at a past revision
    const ListOp* listed_by = nullptr;    // known from a list
  };
  // A watcher event that contradicts an already proven change (same revision and key).
  struct Contradiction {
    const WatchEvent* event;
    size_t change;
  };

  explicit ProvenChanges(const History& h);

  // Key ids: every key any op or event names.
  uint32_t Id(std::string_view key);
  const std::vector<std::string_view>& keys() const { return names_; }
  const std::string_view& Key(uint32_t id) const { return names_[id]; }

  // Sorted by (revision, key).
  const std::vector<Change>& changes() const { return changes_; }
  // Index of the first change at or after `rev`.
  size_t LowerBound(int64_t rev) const;
  // Sortable (revision, key) code, the order of changes().
  static uint64_t Code(int64_t rev, uint32_t key);
  uint64_t CodeAt(size_t i) const { return codes_[i]; }
  // The key's last change at or before `rev` (nullptr: none; the key did not exist).
  const Change* AtOrBefore(uint32_t key, int64_t rev) const;
  // The key's first change after `rev`, at or before `until` (nullptr: none).
  const Change* After(uint32_t key, int64_t rev, int64_t until) const;
  const std::vector<Contradiction>& contradictions() const { return contradictions_; }
  // The highest revision a compaction (answered or not) was asked for; 0: none.
  int64_t max_compact() const { return max_compact_; }

  // "acknowledged put, op 7 of client 2 via 127.0.0.1:2379", "delivered to watcher w", ...
  static std::string Proof(const Change& c);

 private:
  // Adds c unless its (revision, key) is known; returns the known one's index, or -1.
  int64_t Add(const Change& c);

  std::unordered_map<std::string_view, uint32_t> ids_;
  std::vector<std::string_view> names_;
  std::vector<Change> changes_;
  std::vector<uint64_t> codes_;
  std::vector<std::vector<uint32_t>> by_key_;
  std::unordered_map<uint64_t, uint32_t> at_;
  std::vector<Contradiction> contradictions_;
  int64_t max_compact_ = 0;
};

// "PUT k=\"v\" at revision 7" / "DELETE k at revision 9".
std::string DescribeChange(bool del, std::string_view key, int64_t rev, std::string_view value);

}  // namespace faultline::verify
