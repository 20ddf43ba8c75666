#pragma once

#include <grpcpp/support/status_code_enum.h>

#include <vector>

#include "faultline/v1/controller.pb.h"

// The exit codes of every faultline command, from one table: commands say what happened (an
// Outcome, or the RPC status / run states that decide it) and never pick a number themselves.
namespace faultline::cli {

enum class Outcome {
  kOk,           // done; every check and SLO passed
  kFailed,       // ran and failed: a check or SLO failed, a run errored or was cancelled, a
                 // server refused the request
  kBadInput,     // bad flags, spec or experiment (the message names the field); for `check`
                 // also etcd endpoints none of which answered
  kUnreachable,  // the agent or controller (for `run`, the environment) did not answer
};

struct ExitRow {
  Outcome outcome;
  int code;
};

// What a script can tell apart (README "Exit codes").
inline constexpr ExitRow kExitTable[] = {
    {Outcome::kOk, 0},
    {Outcome::kFailed, 1},
    {Outcome::kBadInput, 2},
    {Outcome::kUnreachable, 3},
};

constexpr int ExitCode(Outcome o) {
  for (const auto& row : kExitTable) {
    if (row.outcome == o) return row.code;
  }
  return 1;
}

inline constexpr int kExitOk = ExitCode(Outcome::kOk);
inline constexpr int kExitFailed = ExitCode(Outcome::kFailed);
inline constexpr int kExitUsage = ExitCode(Outcome::kBadInput);
inline constexpr int kExitUnreachable = ExitCode(Outcome::kUnreachable);

// A failed RPC: nobody answering (UNAVAILABLE, DEADLINE_EXCEEDED) is kUnreachable, a refused
// argument kBadInput, any other answer (a standby controller's FAILED_PRECONDITION, ...)
// kFailed.
Outcome OutcomeOfRpc(grpc::StatusCode code);

// One run: PASSED is kOk; FAILED, ERROR, CANCELLED, INTERRUPTED (and anything else) kFailed.
Outcome OutcomeOfRun(v1::Run::State state);

// A suite of runs (`run`, `gate`): the worst of its runs; no run at all is kFailed (a gate must
// not pass on nothing).
Outcome OutcomeOfRuns(const std::vector<v1::Run::State>& states);

// Checks (`check etcd`, `check history`, `workload --check`).
inline Outcome OutcomeOfChecks(bool all_passed) {
  return all_passed ? Outcome::kOk : Outcome::kFailed;
}

}  // namespace faultline::cli
