#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace faultline::verify {

// What a workload client did. Reads are `kGet`; `kCas` is a one-compare txn: if the key's value
// (or mod_revision) equals the expected one, put the new value.
enum class OpType { kPut, kGet, kCas, kDelete };
// ok: the response arrived. failed: etcd refused it and it certainly did not take effect.
// unknown: no answer (timeout, connection lost) — a write may or may not have happened.
enum class Outcome { kOk, kFailed, kUnknown };
enum class CasOn { kValue, kModRevision };

// One operation, from invocation to return. Times are nanoseconds on one monotonic clock
// (the recorder's), so only their order matters.
struct Op {
  int64_t id = 0;
  int client = 0;
  std::string endpoint;  // member the client sent it to
  OpType type = OpType::kGet;
  std::string key;
  std::string value;  // put/cas: the value written (unique per history)
  CasOn cas_on = CasOn::kValue;
  std::string expect_value;         // cas on value: expected value ("" with expect_absent)
  bool expect_absent = false;       // cas on value: the key must not exist
  int64_t expect_mod_revision = 0;  // cas on mod revision (0 = key absent)
  bool serializable = false;        // get: served by the member locally
  int64_t invoke_ns = 0;
  int64_t return_ns = 0;  // for unknown: when the client gave up
  Outcome outcome = Outcome::kOk;
  // Response (ok only).
  int64_t revision = 0;  // header.revision: store revision after (write) / at (read) the op
  bool found = false;    // get
  std::string read_value;
  int64_t read_mod_revision = 0;
  bool succeeded = false;  // cas, conditional delete
  int64_t deleted = 0;     // delete
  std::string error;       // failed/unknown: why
  // put: the lease the key was attached to; get: the lease whose key it reads back (lease
  // traffic). Ops with a lease are judged by CheckLeases, not by linearizability or lost-writes
  // (a lease ends and takes its keys with it, which a register model cannot know).
  int64_t lease = 0;
  // delete: only if the key's mod revision is expect_mod_revision (0: the key is absent), as
  // Kubernetes deletes. A false compare reports the key as found/read_value/read_mod_revision.
  bool conditional = false;
  // cas with a read of the key at a past revision in the same txn (past_revision > 0). ok only:
  // what that read returned.
  int64_t past_revision = 0;
  bool past_found = false;
  std::string past_value;
  int64_t past_mod_revision = 0;

  // An ok op that made a revision of its key: a put, a cas that succeeded, a delete (conditional
  // or not) that deleted it. Any other answers with the store's revision, whichever key made it.
  bool ChangedTheStore() const {
    return type == OpType::kPut || (type == OpType::kCas && succeeded) ||
           (type == OpType::kDelete && deleted > 0);
  }
};

// One event a watcher saw.
struct WatchEvent {
  std::string watcher;   // usually the member endpoint it watched through
  int64_t revision = 0;  // kv.mod_revision (the event's revision)
  std::string key;
  bool is_delete = false;
  std::string value;
  int64_t recv_ns = 0;
  // Watchers with WatchOpen records (issue 13); -1: not recorded (older files).
  int stream = -1;              // which WatchOpen of this watcher delivered it (0, 1, ... in order)
  int64_t response = -1;        // the response it came in, counted per watcher across streams
  int64_t create_revision = 0;  // put: kv.create_revision (0: not recorded)
  int64_t version = 0;
  bool has_prev = false;  // prev_kv was asked for and the server sent one
  std::string prev_value;
  int64_t prev_mod_revision = 0;
  bool IsCreate() const {
    return !is_delete && create_revision != 0 && create_revision == revision;
  }
};

// A watch stream the workload opened. A watcher (one name) is one logical watch: after a break
// it is resumed on a new stream from the revision after the last it saw, so its events across
// streams form one sequence the guarantees speak about.
struct WatchOpen {
  std::string watcher;
  int stream = 0;
  std::string endpoint;  // the member it was opened on
  std::string key, range_end;
  int64_t start_revision = 0;
  std::string start;  // current|past|compacted|future|resume: why it starts there
  bool prev_kv = false;
  bool progress_notify = false;
  int64_t invoke_ns = 0;
  // How the stream ended: stopped (by the workload), canceled (by the server), compacted (the
  // start revision was compacted: compact_revision says from where it could resume), error.
  std::string end = "stopped";
  int64_t compact_revision = 0;
  std::string error;
  int64_t end_ns = 0;
};

// A response with no events and no create/cancel flag: a progress notification at `revision`
// (the header revision): every event of the watch up to it has been delivered.
struct WatchProgress {
  std::string watcher;
  int stream = 0;
  int64_t response = 0;
  int64_t revision = 0;
  int64_t recv_ns = 0;
};

// Maintenance and lease calls of the traffic kinds.
struct AdminOp {
  enum class Kind { kCompact, kDefragment, kLeaseGrant, kLeaseKeepAlive, kLeaseRevoke };
  Kind kind = Kind::kCompact;
  int client = 0;
  std::string endpoint;
  int64_t invoke_ns = 0, return_ns = 0;
  Outcome outcome = Outcome::kOk;
  std::string error;
  int64_t revision = 0;   // compact: the revision compacted at; revoke: header revision (ok)
  bool physical = false;  // compact
  int64_t lease = 0;      // lease calls
  int64_t ttl = 0;        // grant: asked and granted TTL (s); keep-alive: the TTL it renewed to
};

// A range over many keys (Kubernetes' list), at the current revision or `at_revision`.
struct ListOp {
  int64_t id = 0;
  int client = 0;
  std::string endpoint;
  std::string key, range_end;
  int64_t at_revision = 0;
  int64_t invoke_ns = 0, return_ns = 0;
  Outcome outcome = Outcome::kOk;
  std::string error;
  int64_t revision = 0;  // header revision
  struct Kv {
    std::string key, value;
    int64_t mod_revision = 0;
  };
  std::vector<Kv> kvs;
};

struct History {
  std::vector<Op> ops;
  std::vector<WatchEvent> watch_events;
  // Final state read linearizably after the workload, key -> (value, mod_revision); keys absent
  // at the end are listed with final_present=false.
  struct Final {
    std::string key;
    bool present = false;
    std::string value;
    int64_t mod_revision = 0;
  };
  std::vector<Final> final_reads;
  // LoadJsonl found the header line: the file is a faultline history (a file without one is
  // not, even if its lines parse).
  bool has_header = false;
  // Issue 13's traffic kinds (empty in older files).
  std::vector<WatchOpen> watch_opens;
  std::vector<WatchProgress> watch_progress;
  std::vector<AdminOp> admin;
  std::vector<ListOp> lists;
};

const char* ToString(OpType t);
const char* ToString(Outcome o);
std::optional<OpType> ParseOpType(const std::string& s);
std::optional<Outcome> ParseOutcome(const std::string& s);

// JSON lines, one record per line, each an object with "kind":
//   {"kind":"header","format":"faultline-history","version":1}
//   {"kind":"op","id":7,"client":2,"endpoint":"127.0.0.1:2379","type":"put|get|cas|delete",
//    "key":"k3","value":"c2-17","invoke_ns":..,"return_ns":..,"outcome":"ok|failed|unknown",
//    "revision":..,  // ok only
//    get: "serializable":bool,"found":bool,"read_value":"..","read_mod_revision":..
//    cas: "cas_on":"value|mod_revision","expect_value":"..","expect_absent":bool,
//         "expect_mod_revision":..,"succeeded":bool
//    delete: "deleted":n   failed/unknown: "error":"..."}
//   {"kind":"watch","watcher":"..","revision":..,"key":"..","type":"put|delete","value":"..",
//    "recv_ns":..}
//   {"kind":"final","key":"..","present":bool,"value":"..","mod_revision":..}
// Keys and values are JSON strings (UTF-8; the workload only writes ASCII).
void SaveJsonl(const History& h, std::ostream& out);
// Throws std::runtime_error naming the line number and field on bad input.
History LoadJsonl(std::istream& in);

// Jepsen/Knossos EDN: one map per line, an :invoke and a completion (:ok, :fail or :info) per op,
// in time order, with independent keys as [key value] tuples (jepsen.independent): :f :read,
// :write (delete is a write of nil) and :cas [expected new] (cas on mod revision is exported as
// :info since a register model cannot express it).
void ExportEdn(const History& h, std::ostream& out);

}  // namespace faultline::verify
