// faultline-agent: serves the Agent API and owns every fault applied on this host.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "agent/agent_service.h"
#include "agent/fault_manager.h"
#include "agent/prometheus.h"
#include "agent/registrar.h"
#include "agent/registry_setup.h"
#include "faults/core/duration.h"
#include "faults/core/host.h"
#include "faults/core/log_line.h"
#include "faults/metrics/http_server.h"
#include "faults/net/addr.h"
#include "proto/transport/server.h"

namespace {

using namespace faultline;

void Log(const std::string& msg) { faults::LogLine("faultline-agent", msg); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"faultline-agent: injects and reverts faults on this host"};
  transport::ServerFlags serving{.listen = {"unix:///run/faultline/agent.sock"},
                                 .allowed_clients = {"faultline-controller", "faultline-cli"}};
  std::string state_dir = "/var/lib/faultline/agent";
  std::vector<std::string> label_args;
  std::string default_lease = "10m";
  std::string metrics_listen;
  agent::AgentOptions agent_options;
  bool recover_only = false;
  std::vector<std::string> register_with;
  std::string advertise;
  transport::AddServerFlags(app, serving,
                            "client certificate common names accepted over TLS (those faultline "
                            "certs init gives the controller and the CLI)");
  app.add_option("--state-dir", state_dir, "journal and family state")->capture_default_str();
  app.add_option("--label", label_args, "KEY=VALUE describing this agent (repeatable)");
  app.add_option("--default-lease", default_lease,
                 "lease of a fault injected without lease or duration")
      ->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen, "HOST:PORT for GET /metrics (off if empty)");
  app.add_flag("--recover-only", recover_only,
               "revert everything the journal lists, sweep leftovers, and exit (for systemd "
               "ExecStopPost after a crash)");
  app.add_option("--register", register_with,
                 "controller to register with and heartbeat (unix:///PATH or HOST:PORT); "
                 "repeatable or comma-separated: every replica of an HA controller, so whichever "
                 "becomes active already knows this agent; over TCP the agent's "
                 "--tls-cert/--tls-key are its client certificate and --tls-client-ca verifies "
                 "the controller")
      ->delimiter(',');
  app.add_option("--advertise", advertise,
                 "address the controller should use to reach this agent (default: the first "
                 "--listen)");
  agent::AddAgentOptions(app, agent_options);
  CLI11_PARSE(app, argc, argv);

  try {
    std::map<std::string, std::string> labels;
    for (const auto& l : label_args) {
      auto eq = l.find('=');
      if (eq == std::string::npos || eq == 0) {
        throw std::invalid_argument("--label " + l + ": want KEY=VALUE");
      }
      labels[l.substr(0, eq)] = l.substr(eq + 1);
    }
    std::string why;
    auto lease = faults::ParseDuration(default_lease, &why);
    if (!lease || lease->count() <= 0) {
      throw std::invalid_argument("--default-lease " + default_lease + ": " +
                                  (why.empty() ? "must be positive" : why));
    }
    transport::PeerPolicy policy;
    policy.Allow(serving.AllowedClients());
    transport::Listeners listeners(serving.listen, serving.tls, policy);
    const auto& addrs = listeners.addresses();
    // The controller is dialed with the agent's own identity, verified with the same CA
    // (`faultline certs init` makes agent certificates for both ends). Checked before anything
    // starts: plaintext to a controller off loopback is refused.
    const transport::TlsFiles& register_tls = serving.tls;
    for (const auto& controller : register_with) transport::Dial(controller, register_tls);

    // Signals are taken synchronously by one thread; block them before any thread starts.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    faults::Journal journal(state_dir);
    if (journal.torn_bytes() > 0) {
      Log("journal: dropped a torn last record (" + std::to_string(journal.torn_bytes()) +
          " bytes) from a crash mid-write");
    }
    if (!metrics_listen.empty()) {
      agent_options.metrics_port = faults::net::EndpointPort(metrics_listen).value_or(0);
    }
    // The controllers it registers with are control plane like --controller: the agent's own
    // network faults must never cut them off.
    for (const auto& c : register_with) {
      auto a = transport::ParseListen(c, "--register");
      if (a.unix_socket) continue;
      if (faults::net::EndpointCidr(a.host_port)) {
        agent_options.controller_addresses.push_back(a.host_port);
      } else {
        Log("--register " + c + ": not an IP address, so network faults do not exempt it; " +
            "add --controller IP");
      }
    }
    agent::Host host(agent_options, state_dir);
    faults::FaultContext ctx = host.Context();
    ctx.agent_pid = ::getpid();
    faults::Registry registry;
    host.RegisterFamilies(registry, addrs);

    // Overlay processes outlive a crashed agent: attach first, so the journal's IO faults are
    // reverted through them.
    for (const auto& line : host.AttachOverlays()) Log(line);
    agent::FaultManager manager(registry, ctx, journal, {.default_lease = *lease});
    for (const auto& line : manager.Startup()) Log(line);
    if (recover_only) {
      for (const auto& line : host.EndOverlays()) Log(line);
      Log("recover-only: done");
      return 0;
    }
    host.Start();
    for (const auto& line : host.FillIfbPool()) Log(line);

    std::unique_ptr<metrics::MetricsServer> metrics;
    if (!metrics_listen.empty()) {
      metrics = std::make_unique<metrics::MetricsServer>(
          metrics_listen, [&] { return agent::RenderMetrics(manager); });
      Log("metrics on http://" + metrics_listen.substr(0, metrics_listen.rfind(':')) + ":" +
          std::to_string(metrics->port()) + "/metrics");
    }

    // Probed once: families try kernel features for real (scratch devices, cgroups, seccomp).
    const std::vector<v1::Capability> capabilities = host.Capabilities(registry);
    agent::ControllerFences fences(std::filesystem::path(state_dir) / "controller-epochs.json");
    agent::AgentService service(manager, registry, labels, capabilities, &host.overlays(),
                                host.managed(), &fences);
    grpc::ServerBuilder builder;
    listeners.AddTo(builder);
    builder.RegisterService(&service);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server) throw std::runtime_error("cannot listen on the --listen addresses");
    for (const auto& line : listeners.Started()) Log("serving on " + line);

    std::vector<std::unique_ptr<agent::Registrar>> registrars;
    for (const auto& controller : register_with) {
      agent::Registrar::Options ro;
      ro.controller = controller;
      ro.tls = register_tls;
      auto* reg = &ro.registration;
      reg->set_address(!advertise.empty()     ? advertise
                       : addrs[0].unix_socket ? "unix://" + addrs[0].path
                                              : addrs[0].host_port);
      for (const auto& [k, v] : labels) (*reg->mutable_labels())[k] = v;
      for (const auto& f : registry.Families()) reg->add_families(f);
      for (const auto& c : capabilities) *reg->add_capabilities() = c;
      reg->set_agent_version(FAULTLINE_VERSION);
      char hostname[256] = {};
      ::gethostname(hostname, sizeof hostname - 1);
      reg->set_hostname(hostname);
      ro.active_faults = [&manager] {
        std::vector<std::string> ids;
        for (const auto& f : manager.List(false)) ids.push_back(f.id());
        return ids;
      };
      registrars.push_back(std::make_unique<agent::Registrar>(std::move(ro)));
      Log("registering with controller " + controller);
    }

    std::thread waiter([&] {
      int sig = 0;
      sigwait(&stop_signals, &sig);
      Log(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
          ": reverting every fault");
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    });
    server->Wait();
    waiter.join();
    registrars.clear();
    manager.Shutdown();
    host.Stop();
    Log("stopped; " + std::to_string(manager.active()) + " faults left active");
    return manager.active() == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    Log(std::string("error: ") + e.what());
    return 1;
  }
}
