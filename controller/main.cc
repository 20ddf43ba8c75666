// faultline-controller: agents register here; experiments run here, on demand and on schedule.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "controller/daemon/metrics.h"
#include "controller/daemon/service.h"
#include "faults/core/duration.h"
#include "faults/metrics/http_server.h"

int main(int argc, char** argv) {
  using namespace faultline;
  CLI::App app{"faultline-controller: runs chaos experiments against etcd through agents"};
  std::string listen = "unix:///run/faultline/controller.sock";
  std::string state_dir = "/var/lib/faultline/controller";
  std::vector<std::string> endpoints, agents;
  std::string lease = "15s", heartbeat = "5s";
  std::string metrics_listen;
  app.add_option("--listen", listen, "unix:///PATH or HOST:PORT")->capture_default_str();
  app.add_option("--state-dir", state_dir, "embedded state store")->capture_default_str();
  app.add_option("--etcd-endpoints", endpoints, "etcd client URLs of the cluster under test")
      ->delimiter(',')
      ->required();
  app.add_option("--agents", agents, "agent addresses used besides registered ones")
      ->delimiter(',');
  app.add_option("--lease", lease, "lease of injected faults (renewed every third of it)")
      ->capture_default_str();
  app.add_option("--heartbeat-interval", heartbeat, "asked of registering agents")
      ->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen, "HOST:PORT for GET /metrics (off if empty)");
  CLI11_PARSE(app, argc, argv);

  controller::ControllerOptions opt;
  opt.etcd_endpoints = endpoints;
  opt.static_agents = agents;
  std::string why;
  auto l = faults::ParseDuration(lease, &why);
  auto h = faults::ParseDuration(heartbeat, &why);
  if (!l || l->count() <= 0 || !h || h->count() <= 0) {
    std::cerr << "faultline-controller: --lease/--heartbeat-interval: " << why << "\n";
    return 2;
  }
  opt.lease = std::chrono::duration_cast<std::chrono::milliseconds>(*l);
  opt.heartbeat_interval =
      std::max(std::chrono::seconds(1), std::chrono::duration_cast<std::chrono::seconds>(*h));

  // Signals are taken synchronously on the main thread so shutdown can recover faults.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  try {
    controller::StateStore store(state_dir);
    controller::ControllerService service(store, opt);
    service.Start();
    std::string uri = listen;
    if (uri.starts_with("/")) uri = "unix://" + uri;
    if (uri.starts_with("unix://")) {
      auto path = std::filesystem::path(uri.substr(7));
      std::filesystem::create_directories(path.parent_path());
      std::filesystem::remove(path);  // a stale socket from a crashed controller
    }
    grpc::ServerBuilder builder;
    builder.AddListeningPort(uri, grpc::InsecureServerCredentials());
    builder.RegisterService(&service);
    auto server = builder.BuildAndStart();
    if (!server) throw std::runtime_error("--listen " + listen + ": cannot listen");
    std::unique_ptr<metrics::MetricsServer> metrics_server;
    if (!metrics_listen.empty()) {
      metrics_server = std::make_unique<metrics::MetricsServer>(
          metrics_listen, [&] { return controller::RenderMetrics(service.Metrics()); });
      std::cerr << "faultline-controller: metrics on http://"
                << metrics_listen.substr(0, metrics_listen.rfind(':')) << ":"
                << metrics_server->port() << "/metrics" << std::endl;
    }
    std::cerr << "faultline-controller: listening on " << listen << ", state in " << state_dir
              << std::endl;
    int sig = 0;
    sigwait(&set, &sig);
    std::cerr << "faultline-controller: signal " << sig
              << ": stopping runs and recovering their faults" << std::endl;
    service.Stop();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  } catch (const std::exception& e) {
    std::cerr << "faultline-controller: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
