#include "cli/agent_client.h"

#include <grpcpp/grpcpp.h>

namespace faultline::cli {
std::unique_ptr<v1::Agent::Stub> ConnectAgent(const AgentAddress& a) {
  return v1::Agent::NewStub(transport::Dial(a.address, a.tls));
}

void Check(const grpc::Status& status, const std::string& target, const std::string& what) {
  if (status.ok()) return;
  std::string msg = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    msg = what + " " + target + " is not reachable (" + msg + ")";
  }
  throw RpcError(msg, status.error_code());
}

std::unique_ptr<grpc::ClientContext> Context(const AgentAddress& a) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + a.timeout);
  return ctx;
}

}  // namespace faultline::cli
