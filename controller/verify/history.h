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
  bool succeeded = false;  // cas
  int64_t deleted = 0;     // delete
  std::string error;       // failed/unknown: why
};

// One event a watcher saw.
struct WatchEvent {
  std::string watcher;   // usually the member endpoint it watched through
  int64_t revision = 0;  // kv.mod_revision (the event's revision)
  std::string key;
  bool is_delete = false;
  std::string value;
  int64_t recv_ns = 0;
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
