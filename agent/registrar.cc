#include "agent/registrar.h"

#include <grpcpp/grpcpp.h>

#include <iostream>

#include "faults/core/duration.h"
#include "faults/core/log_line.h"

namespace faultline::agent {

Registrar::Registrar(Options options) : opt_(std::move(options)) {
  stub_ = v1::Controller::NewStub(transport::Dial(opt_.controller, opt_.tls));
  thread_ = std::thread([this] { Loop(); });
}

Registrar::~Registrar() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool Registrar::registered() const {
  std::lock_guard lock(mu_);
  return registered_;
}

int Registrar::registrations() const {
  std::lock_guard lock(mu_);
  return registrations_;
}

bool Registrar::Register() {
  v1::RegisterRequest req;
  *req.mutable_agent() = opt_.registration;
  v1::RegisterResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto st = stub_->Register(&ctx, req, &resp);
  std::lock_guard lock(mu_);
  if (!st.ok()) {
    if (registered_ || registrations_ == 0) {
      faults::LogLine("faultline-agent", "cannot register with controller " + opt_.controller +
                                             ": " + st.error_message() + " (retrying)");
    }
    registered_ = false;
    return false;
  }
  auto hb = std::chrono::duration_cast<std::chrono::milliseconds>(
      faults::FromProto(resp.heartbeat_interval()));
  if (hb.count() > 0) interval_ = hb;
  registered_ = true;
  ++registrations_;
  return true;
}

void Registrar::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    bool want_register = !registered_;
    lock.unlock();
    bool ok = true;
    if (want_register) {
      ok = Register();
    } else {
      v1::HeartbeatRequest req;
      req.set_address(opt_.registration.address());
      if (opt_.active_faults) {
        for (auto& id : opt_.active_faults()) req.add_active_fault_ids(std::move(id));
      }
      v1::HeartbeatResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      auto st = stub_->Heartbeat(&ctx, req, &resp);
      // Unknown to the controller (it restarted with a fresh view) or unreachable: register
      // again at the next turn.
      if (!st.ok() || resp.reregister()) {
        std::lock_guard l(mu_);
        registered_ = false;
        ok = st.ok();
      }
    }
    lock.lock();
    auto wait = ok ? (registered_ ? interval_ : std::chrono::milliseconds(0)) : opt_.retry;
    cv_.wait_for(lock, wait, [&] { return stop_; });
  }
}

}  // namespace faultline::agent
