#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "controller/runner/targets.h"
#include "faultline/v1/agent.grpc.pb.h"
#include "proto/transport/tls.h"

// The runner's side of the agent API: connecting, one stub per agent, each RPC with its deadline,
// and the fan-out that reaches a fleet at nearly the same moment. No experiment logic here.
namespace faultline::controller {

using AgentConnector =
    std::function<std::shared_ptr<v1::Agent::StubInterface>(const std::string& address)>;

// Plaintext gRPC to "unix:///path", "/path" or a loopback "HOST:PORT" (the lab and tests);
// throws std::invalid_argument for TCP off loopback, which needs ConnectWith's credentials.
std::shared_ptr<v1::Agent::StubInterface> ConnectInsecure(const std::string& address);

// Agents over mTLS (`tls`: the controller's client certificate and the CA that verifies agents);
// unix sockets stay plaintext.
AgentConnector ConnectWith(transport::TlsFiles tls);

// Asks each agent for its labels (Capabilities). Throws naming the address of the first agent
// that does not answer.
std::vector<AgentInfo> DescribeAgents(const std::vector<std::string>& addresses,
                                      const AgentConnector& connect = ConnectInsecure);

// "CODE message" of a failed RPC, for timeline events and errors.
std::string RpcMessage(const grpc::Status& s);

// Runs fn(0..n-1) on up to 32 threads, so a fault reaches a large fleet at nearly the same
// moment instead of one agent after another. Returns when every call returned.
void ParallelFor(size_t n, const std::function<void(size_t)>& fn);

// The agents of one run, by address: a stub per agent, made on first use (thread-safe). With a
// fence (an HA controller's term), every Inject and Renew carries it.
class AgentFleet {
 public:
  explicit AgentFleet(AgentConnector connect,
                      std::optional<v1::ControllerFence> fence = std::nullopt)
      : connect_(std::move(connect)), fence_(std::move(fence)) {}

  grpc::Status Inject(const std::string& address, const v1::InjectRequest& req,
                      v1::InjectResponse* resp);
  // Reverts one fault by id; harmless when it already ended.
  grpc::Status RecoverFault(const std::string& address, const std::string& fault_id,
                            v1::RecoverResponse* resp);
  // Reverts every fault of the experiment on that agent.
  grpc::Status RecoverExperiment(const std::string& address, const std::string& experiment_id,
                                 v1::RecoverResponse* resp);
  // Extends the lease of every fault of the experiment (a short deadline: a renewal that hangs
  // is as bad as one that failed).
  grpc::Status Renew(const std::string& address, const std::string& experiment_id,
                     std::chrono::milliseconds lease, v1::RenewResponse* resp);
  grpc::Status ListOverlays(const std::string& address, v1::OverlayResponse* resp);
  // The processes the agent supervises, with their starts and exits (the liveness check).
  grpc::Status Processes(const std::string& address, v1::ProcessesResponse* resp);

 private:
  v1::Agent::StubInterface& Stub(const std::string& address);

  AgentConnector connect_;
  std::optional<v1::ControllerFence> fence_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<v1::Agent::StubInterface>> stubs_;
};

}  // namespace faultline::controller
