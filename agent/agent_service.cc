#include "agent/agent_service.h"

#include <unistd.h>

#include <stdexcept>

#include "faults/process/managed.h"

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
                           faults::io::OverlayManager* overlays,
                           const faults::process::ManagedSet* managed, ControllerFences* fences)
    : manager_(manager),
      registry_(registry),
      labels_(std::move(labels)),
      capabilities_(std::move(capabilities)),
      overlays_(overlays),
      managed_(managed),
      fences_(fences) {}

grpc::Status AgentService::Capabilities(grpc::ServerContext*, const v1::CapabilitiesRequest*,
                                        v1::CapabilitiesResponse* out) {
  out->set_agent_version(FAULTLINE_VERSION);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  out->set_hostname(host);
  for (const auto& [k, v] : labels_) (*out->mutable_labels())[k] = v;
  for (const auto& f : registry_.Families()) out->add_families(f);
  for (const auto& c : capabilities_) *out->add_capabilities() = c;
  return grpc::Status::OK;
}

grpc::Status AgentService::Inject(grpc::ServerContext*, const v1::InjectRequest* req,
                                  v1::InjectResponse* out) {
  return Guard([&] {
    std::shared_lock<std::shared_mutex> admitted;
    if (fences_) admitted = fences_->Admit(req->fence(), "inject");
    *out->mutable_fault() = manager_.Inject(*req);
  });
}

grpc::Status AgentService::Renew(grpc::ServerContext*, const v1::RenewRequest* req,
                                 v1::RenewResponse* out) {
  // A deposed replica may not keep its faults either: they end by their lease.
  return Guard([&] {
    std::shared_lock<std::shared_mutex> admitted;
    if (fences_) admitted = fences_->Admit(req->fence(), "renew");
    for (auto& s : manager_.Renew(*req)) *out->add_faults() = std::move(s);
  });
}

grpc::Status AgentService::Recover(grpc::ServerContext*, const v1::RecoverRequest* req,
                                   v1::RecoverResponse* out) {
  return Guard([&] {
    // Never refused, but a newer term it carries fences the older replicas off at once.
    std::shared_lock<std::shared_mutex> admitted;
    if (fences_) admitted = fences_->Admit(req->fence(), "recover", /*refuse_lower=*/false);
    for (auto& s : manager_.Recover(*req)) *out->add_faults() = std::move(s);
  });
}

grpc::Status AgentService::List(grpc::ServerContext*, const v1::ListRequest* req,
                                v1::ListResponse* out) {
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
    for (const auto& m : overlays->Mounts()) {
      out->add_mounts(m);
      auto* st = out->add_overlays();
      st->set_dir(m);
      auto ov = overlays->Find(m);
      if (!ov) continue;
      st->set_pid(ov->pid());
      st->set_attached(ov->attached());
      try {
        auto r = ov->State();
        *st->mutable_rules() = r.rules();
        st->set_leases_lapsed(r.leases_lapsed());
        st->set_crashes(r.crashes());
      } catch (const std::exception& e) {
        st->set_error(e.what());
      }
    }
  });
}

}  // namespace

grpc::Status AgentService::MountOverlay(grpc::ServerContext*, const v1::OverlayRequest* req,
                                        v1::OverlayResponse* out) {
  if (req->dir().empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "dir: required"};
  return OverlayCall(overlays_, req->dir(), out, [&](auto& o) { o.Mount(req->dir()); });
}

grpc::Status AgentService::UnmountOverlay(grpc::ServerContext*, const v1::OverlayRequest* req,
                                          v1::OverlayResponse* out) {
  if (req->dir().empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "dir: required"};
  return OverlayCall(overlays_, req->dir(), out, [&](auto& o) {
    if (!o.Unmount(req->dir())) throw std::out_of_range("no overlay mounted at " + req->dir());
  });
}

grpc::Status AgentService::ListOverlays(grpc::ServerContext*, const v1::ListOverlaysRequest*,
                                        v1::OverlayResponse* out) {
  return OverlayCall(overlays_, "", out, [](auto&) {});
}

grpc::Status AgentService::Processes(grpc::ServerContext*, const v1::ProcessesRequest*,
                                     v1::ProcessesResponse* out) {
  for (const auto& [k, v] : labels_) (*out->mutable_labels())[k] = v;
  if (managed_ == nullptr) return grpc::Status::OK;
  for (const auto& name : managed_->Names()) {
    const auto& proc = managed_->Get(name);
    auto* p = out->add_processes();
    p->set_name(name);
    p->set_pid(proc.Pid());
    p->set_restarts(proc.restarts());
    p->set_restart(faults::process::ToString(proc.spec().restart));
    p->set_log(proc.spec().log);
    for (const auto& e : proc.Events()) {
      auto* pe = p->add_events();
      pe->set_kind(faults::process::ToString(e.kind));
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(e.at.time_since_epoch());
      pe->mutable_at()->set_seconds(ns.count() / 1'000'000'000);
      pe->mutable_at()->set_nanos(static_cast<int>(ns.count() % 1'000'000'000));
      pe->set_pid(e.pid);
      pe->set_cause(e.cause);
      pe->set_expected(e.expected);
      pe->set_expected_by(e.expected_by);
      for (const auto& l : e.fatal_lines) pe->add_fatal_lines(l);
      pe->set_output_tail(e.output_tail);
    }
  }
  return grpc::Status::OK;
}

}  // namespace faultline::agent
