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
#include "agent/listen_address.h"
#include "agent/prometheus.h"
#include "agent/registrar.h"
#include "agent/registry_setup.h"
#include "faults/core/duration.h"
#include "faults/core/host.h"
#include "faults/metrics/http_server.h"

namespace {

using namespace faultline;

void Log(const std::string& msg) { std::cerr << "faultline-agent: " << msg << std::endl; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"faultline-agent: injects and reverts faults on this host"};
  std::vector<std::string> listen = {"unix:///run/faultline/agent.sock"};
  std::string state_dir = "/var/lib/faultline/agent";
  std::string tls_cert, tls_key, tls_client_ca;
  std::vector<std::string> allowed_clients = {"faultline-controller", "faultline-cli"};
  std::vector<std::string> label_args;
  std::string default_lease = "10m";
  std::string metrics_listen;
  agent::AgentOptions agent_options;
  bool recover_only = false;
  std::vector<std::string> register_with;
  std::string advertise;
  app.add_option("--listen", listen,
                 "unix:///PATH or tcp://HOST:PORT (repeatable); TCP off loopback requires mTLS")
      ->capture_default_str();
  app.add_option("--state-dir", state_dir, "journal and family state")->capture_default_str();
  app.add_option("--tls-cert", tls_cert, "server certificate (PEM) for TCP listeners");
  app.add_option("--tls-key", tls_key, "server private key (PEM)");
  app.add_option("--tls-client-ca", tls_client_ca,
                 "CA (PEM) that client certificates must chain to");
  app.add_option("--tls-allowed-clients", allowed_clients,
                 "client certificate common names accepted over TLS (those faultline certs init "
                 "gives the controller and the CLI); empty string: any certificate the CA signed")
      ->delimiter(',')
      ->capture_default_str();
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
                 "becomes active already knows this agent")
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
    std::vector<agent::ListenAddress> addrs;
    for (const auto& l : listen) addrs.push_back(agent::ParseListen(l));
    bool have_tls = !tls_cert.empty() || !tls_key.empty() || !tls_client_ca.empty();
    if (have_tls && (tls_cert.empty() || tls_key.empty() || tls_client_ca.empty())) {
      throw std::invalid_argument("mTLS needs all of --tls-cert, --tls-key and --tls-client-ca");
    }
    for (const auto& a : addrs) {
      if (!a.loopback() && !have_tls) {
        throw std::invalid_argument("--listen " + a.host_port +
                                    " is off loopback: give --tls-cert, --tls-key and "
                                    "--tls-client-ca (plaintext is allowed only on loopback)");
      }
    }

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
      agent_options.metrics_port =
          static_cast<uint16_t>(std::stoi(metrics_listen.substr(metrics_listen.rfind(':') + 1)));
    }
    agent::Host host(agent_options, state_dir);
    faults::FaultContext ctx = host.Context();
    ctx.agent_pid = ::getpid();
    faults::Registry registry;
    host.RegisterFamilies(registry, addrs);

    agent::FaultManager manager(registry, ctx, journal, {.default_lease = *lease});
    for (const auto& line : manager.Startup()) Log(line);
    if (recover_only) {
      Log("recover-only: done");
      return 0;
    }
    host.Start();

    std::unique_ptr<metrics::MetricsServer> metrics;
    if (!metrics_listen.empty()) {
      metrics = std::make_unique<metrics::MetricsServer>(
          metrics_listen, [&] { return agent::RenderMetrics(manager); });
      Log("metrics on http://" + metrics_listen.substr(0, metrics_listen.rfind(':')) + ":" +
          std::to_string(metrics->port()) + "/metrics");
    }

    std::erase(allowed_clients, "");
    // Probed once: families try kernel features for real (scratch devices, cgroups, seccomp).
    const std::vector<v1::Capability> capabilities = host.Capabilities(registry);
    agent::AgentService service(manager, registry, labels, capabilities, allowed_clients,
                                &host.overlays());
    grpc::ServerBuilder builder;
    std::shared_ptr<grpc::ServerCredentials> tcp_creds = grpc::InsecureServerCredentials();
    if (have_tls) {
      grpc::SslServerCredentialsOptions ssl(
          GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
      ssl.pem_root_certs = faults::ReadWholeFile(tls_client_ca);
      ssl.pem_key_cert_pairs.push_back(
          {faults::ReadWholeFile(tls_key), faults::ReadWholeFile(tls_cert)});
      tcp_creds = grpc::SslServerCredentials(ssl);
    }
    std::vector<int> ports(addrs.size(), 0);
    for (size_t i = 0; i < addrs.size(); ++i) {
      const auto& a = addrs[i];
      if (a.unix_socket) {
        std::filesystem::create_directories(std::filesystem::path(a.path).parent_path());
        ::unlink(a.path.c_str());  // a stale socket from a crashed agent
        builder.AddListeningPort(a.grpc_uri(), grpc::InsecureServerCredentials());
      } else {
        builder.AddListeningPort(a.grpc_uri(), tcp_creds, &ports[i]);
      }
    }
    builder.RegisterService(&service);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server) throw std::runtime_error("cannot listen on the --listen addresses");
    for (size_t i = 0; i < addrs.size(); ++i) {
      if (addrs[i].unix_socket) {
        ::chmod(addrs[i].path.c_str(), 0660);
        Log("serving on unix://" + addrs[i].path);
      } else {
        Log("serving on " + addrs[i].host_port + (have_tls ? " (mTLS)" : " (plaintext, loopback)") +
            " port " + std::to_string(ports[i]));
      }
    }

    std::vector<std::unique_ptr<agent::Registrar>> registrars;
    for (const auto& controller : register_with) {
      agent::Registrar::Options ro;
      ro.controller = controller;
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
    for (const auto& a : addrs) {
      if (a.unix_socket) ::unlink(a.path.c_str());
    }
    Log("stopped; " + std::to_string(manager.active()) + " faults left active");
    return manager.active() == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    Log(std::string("error: ") + e.what());
    return 1;
  }
}
