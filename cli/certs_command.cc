#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "proto/transport/certs.h"

namespace faultline::cli {

void AddCertsCommand(CLI::App& app) {
  auto* certs =
      app.add_subcommand("certs", "certificates for mTLS between controller, agents, CLI");
  certs->require_subcommand(1);
  auto* init =
      certs->add_subcommand("init", "create a CA and controller, CLI and agent certificates");
  auto o = std::make_shared<transport::CertsOptions>();
  init->add_option("--dir", o->dir, "where to write the PEM files")->required();
  init->add_option("--agent", o->agents,
                   "one certificate per agent host name or IP (repeatable; default: one shared "
                   "\"agent\" certificate)");
  init->add_option("--agent-host", o->agent_hosts,
                   "extra names/IPs every agent certificate covers");
  init->add_option("--controller-host", o->controller_hosts,
                   "names/IPs the controller is reached at (repeatable)")
      ->capture_default_str();
  init->add_option("--days", o->days, "validity")
      ->check(CLI::Range(1, 3650))
      ->capture_default_str();
  init->add_flag("--force", o->force, "replace existing files");
  init->callback([o] {
    for (const auto& p : transport::InitCerts(*o)) std::cout << p.string() << "\n";
    std::cout << "controller: --tls-cert controller.crt --tls-key controller.key "
                 "--tls-client-ca ca.crt\n"
              << "agents:     --tls-cert AGENT.crt --tls-key AGENT.key --tls-client-ca ca.crt\n"
              << "cli:        --tls-ca ca.crt --tls-cert cli.crt --tls-key cli.key\n";
  });
}

}  // namespace faultline::cli
