#include "cli/agent_client.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <sstream>

#include "faults/core/host.h"

namespace faultline::cli {
std::string GrpcTarget(const std::string& address) {
  if (address.starts_with("unix:")) return address;
  if (!address.empty() && address.front() == '/') return "unix://" + address;
  if (address.starts_with("tcp://")) return address.substr(6);
  return address;
}

std::unique_ptr<v1::Agent::Stub> ConnectAgent(const AgentAddress& a) {
  std::string target = GrpcTarget(a.address);
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!a.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = faults::ReadWholeFile(a.tls_ca);
    if (!a.tls_cert.empty()) {
      ssl.pem_cert_chain = faults::ReadWholeFile(a.tls_cert);
      ssl.pem_private_key = faults::ReadWholeFile(a.tls_key);
    }
    creds = grpc::SslCredentials(ssl);
  }
  return v1::Agent::NewStub(grpc::CreateChannel(target, creds));
}

void Check(const grpc::Status& status, const std::string& target) {
  if (status.ok()) return;
  std::string msg = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    msg = "agent " + target + " is not reachable (" + msg + ")";
  }
  throw RpcError(msg, status.error_code());
}

std::unique_ptr<grpc::ClientContext> Context(const AgentAddress& a) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + a.timeout);
  return ctx;
}

}  // namespace faultline::cli
