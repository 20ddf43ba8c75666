#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace faultline::cli {

// `faultline check etcd --endpoints A,B,C [-o table|json]`: the cluster checks, once.
struct CheckEtcdArgs {
  std::string endpoints;
  std::string output = "table";
  int timeout_ms = 5000;
  int convergence_ms = 10000;
  std::vector<std::string> prefixes;
  int64_t quota_bytes = 2LL << 30;
  std::string tls_ca, tls_cert, tls_key;
  bool tls = false;
};

// `faultline check history FILE [--export edn|jsonl -O OUT]`: the history checks on a saved
// history (JSON lines), optionally exporting it.
struct CheckHistoryArgs {
  std::string file;
  std::string output = "table";
  std::string export_format;  // "", "edn" or "jsonl"
  std::string export_out;     // file, or "-" for stdout
};

// `faultline workload --endpoints A,B,C --duration 30s [--out FILE] [--check]`: the verification
// workload on its own — clients doing puts, gets, compare-and-sets and deletes on a bounded key
// set, every op recorded — saved as JSON lines for `check history` (or checked at once).
struct WorkloadArgs {
  std::string endpoints;
  std::string duration = "30s";
  int clients = 4;
  int keys = 10;
  double rate = 200;
  bool serializable = false;  // gets are serializable instead of linearizable
  bool spread = false;        // each op to the next endpoint instead of one per client
  uint64_t seed = 1;
  std::string prefix;  // empty: a fresh /faultline/workload/... prefix
  std::string out;     // history file (JSON lines); empty: not saved
  bool check = false;  // run the history checks after the workload
  std::string output = "table";
  std::string tls_ca, tls_cert, tls_key;
};

// Exit codes: 0 every check passed, 1 a check failed, 2 bad usage/input or nothing reachable.
// Errors are written to `err` as one line.
int RunCheckEtcd(const CheckEtcdArgs& args, std::ostream& out, std::ostream& err);
int RunCheckHistory(const CheckHistoryArgs& args, std::ostream& out, std::ostream& err);
int RunWorkload(const WorkloadArgs& args, std::ostream& out, std::ostream& err);

// Adds `check etcd` and `check history` to `app`. A non-zero result ends the process with that
// exit code (after flushing), since the caller's main maps exceptions to other codes.
void AddCheckCommand(CLI::App& app);
// Adds `workload` to `app`, likewise.
void AddWorkloadCommand(CLI::App& app);

}  // namespace faultline::cli
