#include "controller/runner/agent_fleet.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "faults/core/duration.h"

namespace faultline::controller {

using std::chrono::milliseconds;

namespace {

// Agents are driven concurrently (up to this many RPCs in flight).
constexpr size_t kFanout = 32;

std::unique_ptr<grpc::ClientContext> Ctx(milliseconds timeout = milliseconds(5000)) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

}  // namespace

std::shared_ptr<v1::Agent::StubInterface> ConnectInsecure(const std::string& address) {
  return v1::Agent::NewStub(transport::Dial(address, {}));
}

AgentConnector ConnectWith(transport::TlsFiles tls) {
  return [tls = std::move(tls)](const std::string& address) {
    return std::shared_ptr<v1::Agent::StubInterface>(
        v1::Agent::NewStub(transport::Dial(address, tls)));
  };
}

std::vector<AgentInfo> DescribeAgents(const std::vector<std::string>& addresses,
                                      const AgentConnector& connect) {
  std::vector<AgentInfo> out;
  for (const auto& a : addresses) {
    auto stub = connect(a);
    v1::CapabilitiesResponse resp;
    auto st = stub->Capabilities(Ctx().get(), {}, &resp);
    if (!st.ok()) throw std::runtime_error("agent " + a + " does not answer: " + RpcMessage(st));
    AgentInfo info;
    info.address = a;
    info.hostname = resp.hostname();
    info.labels.insert(resp.labels().begin(), resp.labels().end());
    out.push_back(std::move(info));
  }
  return out;
}

std::string RpcMessage(const grpc::Status& s) {
  return std::to_string(int(s.error_code())) + " " + s.error_message();
}

void ParallelFor(size_t n, const std::function<void(size_t)>& fn) {
  if (n <= 1) {
    if (n == 1) fn(0);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (size_t w = 0; w < std::min(n, kFanout); ++w) {
    threads.emplace_back([&] {
      for (size_t i; (i = next++) < n;) fn(i);
    });
  }
  for (auto& t : threads) t.join();
}

v1::Agent::StubInterface& AgentFleet::Stub(const std::string& address) {
  std::lock_guard lock(mu_);
  auto& s = stubs_[address];
  if (!s) s = connect_(address);
  return *s;
}

grpc::Status AgentFleet::Inject(const std::string& address, const v1::InjectRequest& req,
                                v1::InjectResponse* resp) {
  if (!fence_) return Stub(address).Inject(Ctx().get(), req, resp);
  v1::InjectRequest fenced = req;
  *fenced.mutable_fence() = *fence_;
  return Stub(address).Inject(Ctx().get(), fenced, resp);
}

grpc::Status AgentFleet::RecoverFault(const std::string& address, const std::string& fault_id,
                                      v1::RecoverResponse* resp) {
  v1::RecoverRequest req;
  req.set_fault_id(fault_id);
  if (fence_) *req.mutable_fence() = *fence_;
  return Stub(address).Recover(Ctx().get(), req, resp);
}

grpc::Status AgentFleet::RecoverExperiment(const std::string& address,
                                           const std::string& experiment_id,
                                           v1::RecoverResponse* resp) {
  v1::RecoverRequest req;
  req.set_experiment_id(experiment_id);
  if (fence_) *req.mutable_fence() = *fence_;
  return Stub(address).Recover(Ctx().get(), req, resp);
}

grpc::Status AgentFleet::Renew(const std::string& address, const std::string& experiment_id,
                               milliseconds lease, v1::RenewResponse* resp) {
  v1::RenewRequest req;
  req.set_experiment_id(experiment_id);
  faults::ToProto(lease, req.mutable_lease());
  if (fence_) *req.mutable_fence() = *fence_;
  return Stub(address).Renew(Ctx(milliseconds(2000)).get(), req, resp);
}

grpc::Status AgentFleet::ListOverlays(const std::string& address, v1::OverlayResponse* resp) {
  return Stub(address).ListOverlays(Ctx().get(), {}, resp);
}

grpc::Status AgentFleet::Processes(const std::string& address, v1::ProcessesResponse* resp) {
  return Stub(address).Processes(Ctx().get(), {}, resp);
}

}  // namespace faultline::controller
