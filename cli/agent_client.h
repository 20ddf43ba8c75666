#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "faultline/v1/agent.grpc.pb.h"

namespace faultline::cli {

// How to reach an agent: a unix socket path ("/run/faultline/agent.sock" or "unix:///...") or
// HOST:PORT over TCP, with optional mTLS files.
struct AgentAddress {
  std::string address = "unix:///run/faultline/agent.sock";
  std::string tls_ca, tls_cert, tls_key;
  std::chrono::milliseconds timeout{10000};
};

// The gRPC target string for an --agent value.
std::string GrpcTarget(const std::string& address);

std::unique_ptr<v1::Agent::Stub> ConnectAgent(const AgentAddress& address);

// A failed RPC as one line: "agent unix:///x: <code>: <message>".
class RpcError : public std::runtime_error {
 public:
  RpcError(const std::string& what, grpc::StatusCode code)
      : std::runtime_error(what), code_(code) {}
  grpc::StatusCode code() const { return code_; }

 private:
  grpc::StatusCode code_;
};

// Throws RpcError if `status` is not OK.
void Check(const grpc::Status& status, const std::string& target);

// A client context with the address's deadline.
std::unique_ptr<grpc::ClientContext> Context(const AgentAddress& address);

}  // namespace faultline::cli
