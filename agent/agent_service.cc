#include "agent/agent_service.h"

#include <unistd.h>

#include <stdexcept>

namespace faultline::agent {

grpc::Status Guard(const std::function<void()>& fn) {
  try {
    fn();
    return grpc::Status::OK;
  } catch (const faults::ValidationError& e) {
    return {grpc::StatusCode::INVALID_ARGUMENT, e.what()};
  } catch (const faults::FaultError& e) {
    return {grpc::StatusCode::FAILED_PRECONDITION, e.what()};
  } catch (const std::out_of_range& e) {
    return {grpc::StatusCode::NOT_FOUND, e.what()};
  } catch (const std::exception& e) {
    return {grpc::StatusCode::INTERNAL, e.what()};
  }
}

AgentService::AgentService(FaultManager& manager, const faults::Registry& registry,
                           std::map<std::string, std::string> labels,
                           std::vector<v1::Capability> capabilities,
                           std::vector<std::string> allowed_clients,
                           faults::io::OverlayManager* overlays)
    : manager_(manager),
      registry_(registry),
      labels_(std::move(labels)),
      capabilities_(std::move(capabilities)),
      allowed_clients_(std::move(allowed_clients)),
      overlays_(overlays) {}

grpc::Status AgentService::Authorize(const grpc::ServerContext* ctx) const {
  auto auth = ctx->auth_context();
  // Unix-socket peers are local and guarded by the socket's file mode.
  if (allowed_clients_.empty() || auth == nullptr || !auth->IsPeerAuthenticated()) {
    return grpc::Status::OK;
  }
  for (const auto& cn : auth->FindPropertyValues("x509_common_name")) {
    std::string name(cn.data(), cn.size());
    for (const auto& allowed : allowed_clients_) {
      if (name == allowed) return grpc::Status::OK;
    }
  }
  std::string who;
  for (const auto& cn : auth->FindPropertyValues("x509_common_name"))
    who.assign(cn.data(), cn.size());
  return {grpc::StatusCode::PERMISSION_DENIED,
          "client certificate \"" + who + "\" is not allowed (--tls-allowed-clients)"};
}

grpc::Status AgentService::Capabilities(grpc::ServerContext* ctx, const v1::CapabilitiesRequest*,
                                        v1::CapabilitiesResponse* out) {
  if (auto st = Authorize(ctx); !st.ok()) return st;
  out->set_agent_version(FAULTLINE_VERSION);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  out->set_hostname(host);
  for (const auto& [k, v] : labels_) (*out->mutable_labels())[k] = v;
  for (const auto& f : registry_.Families()) out->add_families(f);
  for (const auto& c : capabilities_) *out->add_capabilities() = c;
  return grpc::Status::OK;
}

grpc::Status AgentService::Inject(grpc::ServerContext* ctx, const v1::InjectRequest* req,
                                  v1::InjectResponse* out) {
  if (auto st = Authorize(ctx); !st.ok()) return st;
  return Guard([&] { *out->mutable_fault() = manager_.Inject(*req); });
}

grpc::Status AgentService::Renew(grpc::ServerContext* ctx, const v1::RenewRequest* req,
                                 v1::RenewResponse* out) {
  if (auto st = Authorize(ctx); !st.ok()) return st;
  return Guard([&] {
    for (auto& s : manager_.Renew(*req)) *out->add_faults() = std::move(s);
  });
}

grpc::Status AgentService::Recover(grpc::ServerContext* ctx, const v1::RecoverRequest* req,
                                   v1::RecoverResponse* out) {
  if (auto st = Authorize(ctx); !st.ok()) return st;
  return Guard([&] {
    for (auto& s : manager_.Recover(*req)) *out->add_faults() = std::move(s);
  });
}

grpc::Status AgentService::List(grpc::ServerContext* ctx, const v1::ListRequest* req,
                                v1::ListResponse* out) {
  if (auto st = Authorize(ctx); !st.ok()) return st;
  return Guard([&] {
    for (auto& s : manager_.List(req->include_ended())) *out->add_faults() = std::move(s);
  });
}

namespace {

grpc::Status OverlayCall(faults::io::OverlayManager* overlays, const std::string& dir,
                         v1::OverlayResponse* out,
                         const std::function<void(faults::io::OverlayManager&)>& fn) {
  if (overlays == nullptr) {
    return {grpc::StatusCode::UNIMPLEMENTED, "this agent serves no IO overlays"};
  }
  return Guard([&] {
    if (!dir.empty() && dir.front() != '/') {
      throw faults::ValidationError("dir", "must be an absolute path (got \"" + dir + "\")");
    }
    fn(*overlays);
    for (const auto& m : overlays->Mounts()) out->add_mounts(m);
  });
}

}  // namespace

grpc::Status AgentService::MountOverlay(grpc::ServerContext* ctx, const v1::OverlayRequest* req,
                                        v1::OverlayResponse* out) {
  if (auto st = Authorize(ctx); !st.ok()) return st;
  if (req->dir().empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "dir: required"};
  return OverlayCall(overlays_, req->dir(), out, [&](auto& o) { o.Mount(req->dir()); });
}

grpc::Status AgentService::UnmountOverlay(grpc::ServerContext* ctx, const v1::OverlayRequest* req,
                                          v1::OverlayResponse* out) {
  if (auto st = Authorize(ctx); !st.ok()) return st;
  if (req->dir().empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "dir: required"};
  return OverlayCall(overlays_, req->dir(), out, [&](auto& o) {
    if (!o.Unmount(req->dir())) throw std::out_of_range("no overlay mounted at " + req->dir());
  });
}

grpc::Status AgentService::ListOverlays(grpc::ServerContext* ctx, const v1::ListOverlaysRequest*,
                                        v1::OverlayResponse* out) {
  if (auto st = Authorize(ctx); !st.ok()) return st;
  return OverlayCall(overlays_, "", out, [](auto&) {});
}

}  // namespace faultline::agent
