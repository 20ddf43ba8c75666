// Fans one fault out to N registered agents and times "all applied" and "all recovered".
// The agents are lightweight: one gRPC server in this process listening on N unix sockets,
// keeping faults in a map (no kernel work), so what is measured is the controller's fan-out:
// gRPC channels, one Inject/Recover per agent, lease renewals and its own bookkeeping.
// Baseline in the same run: the bare sequence of the same RPCs on the same channels, with no
// runner around them. Usage: controller_fanout_bench [N=1000] [ROUNDS=3]
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>

#include "controller/runner/runner.h"
#include "faults/core/duration.h"

namespace {

using namespace faultline;
using Clock = std::chrono::steady_clock;

class LightAgent final : public v1::Agent::Service {
 public:
  grpc::Status Capabilities(grpc::ServerContext*, const v1::CapabilitiesRequest*,
                            v1::CapabilitiesResponse* r) override {
    (*r->mutable_labels())["app"] = "bench";
    r->set_hostname("bench");
    return grpc::Status::OK;
  }
  grpc::Status Inject(grpc::ServerContext*, const v1::InjectRequest* req,
                      v1::InjectResponse* r) override {
    std::lock_guard lock(mu_);
    std::string id = "f-" + std::to_string(++next_);
    active_[id] = req->experiment_id();
    r->mutable_fault()->set_id(id);
    r->mutable_fault()->set_kind("process/pause");
    r->mutable_fault()->set_state(v1::FaultStatus::ACTIVE);
    return grpc::Status::OK;
  }
  grpc::Status Renew(grpc::ServerContext*, const v1::RenewRequest*, v1::RenewResponse*) override {
    ++renewals;
    return grpc::Status::OK;
  }
  grpc::Status Recover(grpc::ServerContext*, const v1::RecoverRequest* req,
                       v1::RecoverResponse* r) override {
    std::lock_guard lock(mu_);
    for (auto it = active_.begin(); it != active_.end();) {
      bool match = req->has_fault_id() ? it->first == req->fault_id()
                   : req->all()        ? true
                                       : it->second == req->experiment_id();
      if (match) {
        r->add_faults()->set_id(it->first);
        it = active_.erase(it);
      } else {
        ++it;
      }
    }
    return grpc::Status::OK;
  }
  grpc::Status List(grpc::ServerContext*, const v1::ListRequest*, v1::ListResponse*) override {
    return grpc::Status::OK;
  }
  size_t active() {
    std::lock_guard lock(mu_);
    return active_.size();
  }
  std::atomic<int> renewals{0};

 private:
  std::mutex mu_;
  uint64_t next_ = 0;
  std::map<std::string, std::string> active_;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  auto dir =
      std::filesystem::temp_directory_path() / ("faultline-fanout-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  LightAgent service;
  grpc::ServerBuilder builder;
  std::vector<std::string> addresses;
  for (int i = 0; i < n; ++i) {
    addresses.push_back("unix://" + (dir / ("a" + std::to_string(i) + ".sock")).string());
    builder.AddListeningPort(addresses.back(), grpc::InsecureServerCredentials());
  }
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) {
    std::cerr << "cannot start the lightweight agents\n";
    return 1;
  }

  // "Registration": the controller learns every agent's labels.
  std::map<std::string, std::shared_ptr<v1::Agent::StubInterface>> stubs;
  auto connect = [&](const std::string& a) {
    auto& s = stubs[a];
    if (!s) s = controller::ConnectInsecure(a);
    return s;
  };
  auto t = Clock::now();
  auto agents = controller::DescribeAgents(addresses, connect);
  double describe_ms = Ms(Clock::now() - t);

  v1::Experiment exp;
  exp.set_name("fanout");
  exp.set_seed(1);
  exp.mutable_workload()->set_kind(v1::Workload::NONE);
  auto* step = exp.add_steps();
  step->set_name("pause-all");
  step->mutable_fault()->mutable_process()->set_action(v1::ProcessFault::PAUSE);
  step->mutable_fault()->mutable_process()->mutable_target()->set_name("etcd");
  (*step->mutable_target()->mutable_match_labels())["app"] = "bench";
  step->mutable_target()->set_mode(v1::TargetSelector::ALL);
  faults::ToProto(std::chrono::milliseconds(500), step->mutable_duration());

  std::cout << "agents " << n << ", describe (Capabilities) " << describe_ms << " ms\n";
  std::cout << "round  baseline_apply_ms  runner_apply_ms  ratio  baseline_recover_ms  "
               "runner_recover_ms  ratio\n";
  for (int round = 0; round < rounds; ++round) {
    // Baseline: the bare RPCs, in sequence, on the same channels.
    std::vector<std::string> ids;
    auto b0 = Clock::now();
    for (const auto& a : addresses) {
      v1::InjectRequest req;
      *req.mutable_spec() = step->fault();
      req.set_experiment_id("baseline");
      v1::InjectResponse resp;
      grpc::ClientContext ctx;
      connect(a)->Inject(&ctx, req, &resp);
      ids.push_back(resp.fault().id());
    }
    double base_apply = Ms(Clock::now() - b0);
    auto b1 = Clock::now();
    for (size_t i = 0; i < addresses.size(); ++i) {
      v1::RecoverRequest req;
      req.set_fault_id(ids[i]);
      v1::RecoverResponse resp;
      grpc::ClientContext ctx;
      connect(addresses[i])->Recover(&ctx, req, &resp);
    }
    double base_recover = Ms(Clock::now() - b1);

    // The runner: resolve, inject with lease, hold 500 ms, recover.
    controller::RunOptions opt;
    opt.agents = agents;
    opt.connect = connect;
    opt.lease = std::chrono::milliseconds(15000);
    double step_start = -1, last_applied = -1, step_end = -1;
    size_t applied = 0, reverted = 0, active_at_applied = 0;
    opt.on_event = [&](const controller::TimelineEvent& e) {
      if (e.kind == "step.start") step_start = e.t;
      if (e.kind == "fault.applied") {
        last_applied = e.t;
        if (++applied == size_t(n)) active_at_applied = service.active();
      }
      if (e.kind == "fault.reverted" && !e.fault_id.empty()) ++reverted;
      if (e.kind == "step.end") step_end = e.t;
    };
    auto r = controller::RunExperiment(exp, opt);
    if (r.state != v1::Run::PASSED || applied != size_t(n) || reverted != size_t(n) ||
        active_at_applied != size_t(n) || service.active() != 0) {
      std::cerr << "round " << round << ": run " << controller::StateName(r.state) << " " << r.error
                << ", applied " << applied << ", reverted " << reverted << ", active at apply "
                << active_at_applied << ", left " << service.active() << "\n";
      return 1;
    }
    double run_apply = (last_applied - step_start) * 1000;
    double run_recover = (step_end - last_applied) * 1000 - 500;
    std::printf("%5d  %17.1f  %15.1f  %5.2f  %19.1f  %17.1f  %5.2f\n", round, base_apply, run_apply,
                run_apply / base_apply, base_recover, run_recover, run_recover / base_recover);
  }
  server->Shutdown();
  std::filesystem::remove_all(dir);
  return 0;
}
