#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "faultline/v1/agent.grpc.pb.h"
#include "proto/transport/tls.h"

namespace faultline::cli {

// How to reach an agent: a unix socket path ("/run/faultline/agent.sock" or "unix:///...") or
// HOST:PORT over TCP, with the mTLS files (--tls-ca, --tls-cert, --tls-key) that the CLI also
// uses for a controller.
struct AgentAddress {
  std::string address = "unix:///run/faultline/agent.sock";
  transport::TlsFiles tls;
  std::chrono::milliseconds timeout{10000};
};

// Throws std::invalid_argument for plaintext TCP off loopback (see transport::Dial).
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

// Throws RpcError if `status` is not OK; `what` names the server kind in messages.
void Check(const grpc::Status& status, const std::string& target,
           const std::string& what = "agent");

// A client context with the address's deadline.
std::unique_ptr<grpc::ClientContext> Context(const AgentAddress& address);

}  // namespace faultline::cli
