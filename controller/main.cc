// faultline-controller: agents register here; experiments run here, on demand and on schedule.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "controller/daemon/metrics.h"
#include "controller/daemon/service.h"
#include "controller/state/controller_state.h"
#include "faults/core/duration.h"
#include "faults/metrics/http_server.h"

int main(int argc, char** argv) {
  using namespace faultline;
  CLI::App app{"faultline-controller: runs chaos experiments against etcd through agents"};
  std::string listen = "unix:///run/faultline/controller.sock";
  std::string state_dir = "/var/lib/faultline/controller";
  std::vector<std::string> endpoints, agents;
  std::string lease = "15s", heartbeat = "5s";
  std::string state_url, election_ttl = "5s", advertise;
  std::string metrics_listen;
  app.add_option("--listen", listen, "unix:///PATH or HOST:PORT")->capture_default_str();
  auto* dir_opt = app.add_option("--state-dir", state_dir, "embedded state store (one controller)")
                      ->capture_default_str();
  app.add_option("--state", state_url,
                 "HA: state in an etcd cluster that is not the one under test, shared by "
                 "replicas that elect one active controller: etcd://HOST:PORT[,HOST:PORT...]"
                 "[/PREFIX] (default prefix /faultline/controller)")
      ->excludes(dir_opt);
  app.add_option("--election-ttl", election_ttl,
                 "HA: lease of the active replica; a standby takes over this long after the "
                 "active one dies (at once when it stops cleanly)")
      ->capture_default_str();
  app.add_option("--advertise", advertise,
                 "HA: address the CLI uses to reach this replica, told by standbys (default: "
                 "--listen)");
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
  app.footer(
      "HA: run two or more replicas with the same --state etcd://...: one is active (runs the "
      "schedules and runs), the others stand by, answer reads from the store and refuse changes "
      "naming the active one's --advertise address, and take over within --election-ttl when it "
      "dies. `faultline controller status` shows the roles.");
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
  controller::StateConfig sc;
  sc.url = state_url;
  sc.dir = state_dir;
  auto ttl = faults::ParseDuration(election_ttl, &why);
  if (!ttl || *ttl % std::chrono::seconds(1) != std::chrono::nanoseconds(0)) {
    std::cerr << "faultline-controller: --election-ttl: " << (ttl ? "must be whole seconds" : why)
              << "\n";
    return 2;
  }
  sc.election_ttl = std::chrono::duration_cast<std::chrono::seconds>(*ttl);
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  sc.self = {std::string(host) + "-" + std::to_string(getpid()),
             advertise.empty() ? listen : advertise};

  // Signals are taken synchronously on the main thread so shutdown can recover faults.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  try {
    controller::ControllerState state(sc);
    opt.reports_dir = state.reports_dir();
    controller::ControllerService service(state.store(), state.leadership(), opt);
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
    std::cerr << "faultline-controller: listening on " << listen << ", state in "
              << state.store().Describe() << ", replica " << sc.self.id << std::endl;
    int sig = 0;
    sigwait(&set, &sig);
    std::cerr << "faultline-controller: signal " << sig
              << ": stopping runs and recovering their faults" << std::endl;
    service.Stop();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  } catch (const std::invalid_argument& e) {
    std::cerr << "faultline-controller: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "faultline-controller: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
