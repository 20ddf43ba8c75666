#include "cli/exit_codes.h"

namespace faultline::cli {

Outcome OutcomeOfRpc(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Outcome::kUnreachable;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Outcome::kBadInput;
    default:
      return Outcome::kFailed;
  }
}

Outcome OutcomeOfRun(v1::Run::State state) {
  return state == v1::Run::PASSED ? Outcome::kOk : Outcome::kFailed;
}

Outcome OutcomeOfRuns(const std::vector<v1::Run::State>& states) {
  if (states.empty()) return Outcome::kFailed;
  for (auto s : states) {
    if (OutcomeOfRun(s) != Outcome::kOk) return Outcome::kFailed;
  }
  return Outcome::kOk;
}

}  // namespace faultline::cli
