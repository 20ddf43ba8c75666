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
#include "faults/core/log_line.h"
#include "faults/metrics/http_server.h"
#include "proto/transport/server.h"

int main(int argc, char** argv) {
  using namespace faultline;
  CLI::App app{"faultline-controller: runs chaos experiments against etcd through agents"};
  transport::ServerFlags serving{.listen = {"unix:///run/faultline/controller.sock"},
                                 .allowed_clients = {"faultline-cli"}};
  // Agents' certificates (`faultline certs init` names them "faultline-agent NAME") may only
  // register and heartbeat, never submit experiments.
  std::vector<std::string> allowed_agents = {"faultline-agent *"};
  transport::TlsFiles agent_tls{
      .ca_flag = "--agent-tls-ca", .cert_flag = "--agent-tls-cert", .key_flag = "--agent-tls-key"};
  std::string state_dir = "/var/lib/faultline/controller";
  std::vector<std::string> endpoints, agents;
  std::string lease = "15s", heartbeat = "5s";
  std::string state_url, election_ttl = "5s", advertise;
  std::string metrics_listen;
  transport::AddServerFlags(app, serving,
                            "client certificate common names with the whole API over TLS (the "
                            "CLI's of faultline certs init)");
  app.add_option("--tls-allowed-agents", allowed_agents,
                 "client certificate common names that may only register and heartbeat")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--agent-tls-ca", agent_tls.ca,
                 "CA (PEM) that verifies agents over TCP (default: --tls-client-ca)");
  app.add_option("--agent-tls-cert", agent_tls.cert,
                 "client certificate (PEM) for agents (default: --tls-cert; certs init makes the "
                 "controller's certificate for both)");
  app.add_option("--agent-tls-key", agent_tls.key, "its key (default: --tls-key)");
  app.add_option("--agent-tls-server-name", agent_tls.server_name,
                 "verify agents' certificates for this name rather than the address dialed (one "
                 "certificate shared by every node: certs init gives every agent certificate the "
                 "name faultline-agent)");
  auto* dir_opt = app.add_option("--state-dir", state_dir, "embedded state store (one controller)")
                      ->capture_default_str();
  app.add_option("--state", state_url,
                 "HA: state in an etcd cluster that is not the one under test, shared by "
                 "replicas that elect one active controller: etcd://HOST:PORT[,HOST:PORT...]"
                 "[/PREFIX] (default prefix /faultline/controller)")
      ->excludes(dir_opt);
  verify::TlsOptions state_tls;
  app.add_option(
      "--state-cacert", state_tls.ca_file,
      "HA: CA (PEM) verifying the state etcd (TLS to it when any --state-* file is set)");
  app.add_option("--state-cert", state_tls.cert_file,
                 "HA: client certificate (PEM) for the state etcd");
  app.add_option("--state-key", state_tls.key_file, "HA: its key");
  app.add_option("--election-ttl", election_ttl,
                 "HA: lease of the active replica; a standby takes over this long after the "
                 "active one dies (at once when it stops cleanly)")
      ->capture_default_str();
  app.add_option("--advertise", advertise,
                 "HA: address the CLI uses to reach this replica, told by standbys (default: "
                 "--listen)");
  verify::TlsOptions etcd_tls;
  app.add_option("--etcd-cacert", etcd_tls.ca_file,
                 "CA (PEM) verifying the cluster under test (as etcdctl's --cacert)");
  app.add_option("--etcd-cert", etcd_tls.cert_file, "client certificate (PEM) for it");
  app.add_option("--etcd-key", etcd_tls.key_file, "its key");
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
  if (!agent_tls.any()) {
    // A server name alone still means "the controller's own files".
    agent_tls.ca = serving.tls.ca;
    agent_tls.cert = serving.tls.cert;
    agent_tls.key = serving.tls.key;
  }
  opt.connect = controller::ConnectWith(agent_tls);
  opt.etcd_endpoints = endpoints;
  opt.etcd_client.tls_files = etcd_tls;
  opt.etcd_client.tls = !etcd_tls.ca_file.empty() || !etcd_tls.cert_file.empty();
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
  sc.tls = state_tls;
  auto ttl = faults::ParseDuration(election_ttl, &why);
  if (!ttl || *ttl % std::chrono::seconds(1) != std::chrono::nanoseconds(0)) {
    std::cerr << "faultline-controller: --election-ttl: " << (ttl ? "must be whole seconds" : why)
              << "\n";
    return 2;
  }
  sc.election_ttl = std::chrono::duration_cast<std::chrono::seconds>(*ttl);
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  sc.self = {std::string(host) + "-" + std::to_string(getpid()), !advertise.empty() ? advertise
                                                                 : serving.listen.empty()
                                                                     ? ""
                                                                     : serving.listen.front()};

  // Signals are taken synchronously on the main thread so shutdown can recover faults.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  try {
    agent_tls.RequireAllOrNone();
    for (const auto& a : agents) transport::Dial(a, agent_tls);  // refuses plaintext off loopback
    transport::PeerPolicy policy;
    policy.Allow(serving.AllowedClients());
    const std::string svc = std::string("/") + v1::Controller::service_full_name() + "/";
    policy.Allow(allowed_agents, {svc + "Register", svc + "Heartbeat"});
    transport::Listeners listeners(serving.listen, serving.tls, policy);
    controller::ControllerState state(sc);
    opt.reports_dir = state.reports_dir();
    controller::ControllerService service(state.store(), state.leadership(), opt);
    service.Start();
    grpc::ServerBuilder builder;
    listeners.AddTo(builder);
    builder.RegisterService(&service);
    auto server = builder.BuildAndStart();
    if (!server) throw std::runtime_error("cannot listen on the --listen addresses");
    for (const auto& line : listeners.Started()) {
      faults::LogLine("faultline-controller", "listening on " + line);
    }
    std::unique_ptr<metrics::MetricsServer> metrics_server;
    if (!metrics_listen.empty()) {
      metrics_server = std::make_unique<metrics::MetricsServer>(
          metrics_listen, [&] { return controller::RenderMetrics(service.Metrics()); });
      faults::LogLine("faultline-controller",
                      "metrics on http://" + metrics_listen.substr(0, metrics_listen.rfind(':')) +
                          ":" + std::to_string(metrics_server->port()) + "/metrics");
    }
    faults::LogLine("faultline-controller",
                    "state in " + state.store().Describe() + ", replica " + sc.self.id);
    int sig = 0;
    sigwait(&set, &sig);
    faults::LogLine("faultline-controller", "signal " + std::to_string(sig) +
                                                ": stopping runs and recovering their faults");
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
