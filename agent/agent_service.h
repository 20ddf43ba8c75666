#pragma once

#include <map>
#include <string>

#include "agent/controller_fences.h"
#include "agent/fault_manager.h"
#include "faultline/v1/agent.grpc.pb.h"
#include "faults/io/overlay_process.h"

namespace faultline::faults::process {
class ManagedSet;
}

namespace faultline::agent {

// The Agent gRPC service: a thin mapping of requests onto the FaultManager, and of its
// exceptions onto status codes (bad spec -> INVALID_ARGUMENT, cannot apply here ->
// FAILED_PRECONDITION, unknown id -> NOT_FOUND). Who may call is decided before a call gets here,
// by the listener's transport::PeerPolicy (--tls-allowed-clients). Inject and Renew are fenced on
// the controller's election epoch (ControllerFences); Recover never is.
class AgentService final : public v1::Agent::Service {
 public:
  AgentService(FaultManager& manager, const faults::Registry& registry,
               std::map<std::string, std::string> labels, std::vector<v1::Capability> capabilities,
               faults::io::OverlayManager* overlays = nullptr,
               const faults::process::ManagedSet* managed = nullptr,
               ControllerFences* fences = nullptr);

  grpc::Status Capabilities(grpc::ServerContext*, const v1::CapabilitiesRequest*,
                            v1::CapabilitiesResponse*) override;
  grpc::Status Inject(grpc::ServerContext*, const v1::InjectRequest*, v1::InjectResponse*) override;
  grpc::Status Renew(grpc::ServerContext*, const v1::RenewRequest*, v1::RenewResponse*) override;
  grpc::Status Recover(grpc::ServerContext*, const v1::RecoverRequest*,
                       v1::RecoverResponse*) override;
  grpc::Status List(grpc::ServerContext*, const v1::ListRequest*, v1::ListResponse*) override;
  grpc::Status MountOverlay(grpc::ServerContext*, const v1::OverlayRequest*,
                            v1::OverlayResponse*) override;
  grpc::Status UnmountOverlay(grpc::ServerContext*, const v1::OverlayRequest*,
                              v1::OverlayResponse*) override;
  grpc::Status ListOverlays(grpc::ServerContext*, const v1::ListOverlaysRequest*,
                            v1::OverlayResponse*) override;
  grpc::Status Processes(grpc::ServerContext*, const v1::ProcessesRequest*,
                         v1::ProcessesResponse*) override;

 private:
  FaultManager& manager_;
  const faults::Registry& registry_;
  std::map<std::string, std::string> labels_;
  std::vector<v1::Capability> capabilities_;
  faults::io::OverlayManager* overlays_;
  const faults::process::ManagedSet* managed_;
  ControllerFences* fences_;  // null: calls are not fenced (unit tests)
};

// Runs `fn`, translating the manager's exceptions into a gRPC status.
grpc::Status Guard(const std::function<void()>& fn);

}  // namespace faultline::agent
