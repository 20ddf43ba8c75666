#include "cli/exit_codes.h"

#include <gtest/gtest.h>

#include <set>

namespace faultline::cli {
namespace {

TEST(ExitCodes, TheTableIsTheDocumentedOneWithDistinctCodes) {
  // README "Exit codes": 0 done/passed, 1 failed, 2 bad flags or spec, 3 unreachable.
  EXPECT_EQ(ExitCode(Outcome::kOk), 0);
  EXPECT_EQ(ExitCode(Outcome::kFailed), 1);
  EXPECT_EQ(ExitCode(Outcome::kBadInput), 2);
  EXPECT_EQ(ExitCode(Outcome::kUnreachable), 3);
  std::set<int> codes;
  for (const auto& row : kExitTable) codes.insert(row.code);
  EXPECT_EQ(codes.size(), std::size(kExitTable));
}

TEST(ExitCodes, RpcStatus) {
  EXPECT_EQ(OutcomeOfRpc(grpc::StatusCode::UNAVAILABLE), Outcome::kUnreachable);
  EXPECT_EQ(OutcomeOfRpc(grpc::StatusCode::DEADLINE_EXCEEDED), Outcome::kUnreachable);
  EXPECT_EQ(OutcomeOfRpc(grpc::StatusCode::INVALID_ARGUMENT), Outcome::kBadInput);
  // A standby controller answers FAILED_PRECONDITION: an answer, not an unreachable server.
  EXPECT_EQ(OutcomeOfRpc(grpc::StatusCode::FAILED_PRECONDITION), Outcome::kFailed);
  EXPECT_EQ(OutcomeOfRpc(grpc::StatusCode::NOT_FOUND), Outcome::kFailed);
}

TEST(ExitCodes, RunsPassOnlyWhenEveryRunPassedAndThereIsOne) {
  EXPECT_EQ(OutcomeOfRuns({v1::Run::PASSED, v1::Run::PASSED}), Outcome::kOk);
  EXPECT_EQ(OutcomeOfRuns({}), Outcome::kFailed) << "a gate must not pass on nothing";
  for (auto s : {v1::Run::FAILED, v1::Run::ERROR, v1::Run::CANCELLED, v1::Run::INTERRUPTED,
                 v1::Run::RUNNING, v1::Run::STATE_UNSPECIFIED}) {
    EXPECT_EQ(OutcomeOfRuns({v1::Run::PASSED, s}), Outcome::kFailed) << v1::Run::State_Name(s);
  }
  EXPECT_EQ(OutcomeOfChecks(true), Outcome::kOk);
  EXPECT_EQ(OutcomeOfChecks(false), Outcome::kFailed);
}

}  // namespace
}  // namespace faultline::cli
