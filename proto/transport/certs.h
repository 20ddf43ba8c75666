#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace faultline::transport {

// What `faultline certs init` makes (issued here, beside the mTLS credentials that load them): one
// CA and a certificate per role, all ECDSA P-256. Identities are the certificates' common names:
// agents accept only kControllerName and kCliName as clients (faultline-agent
// --tls-allowed-clients); the controller gives kCliName the whole API and agents (kAgentNamePrefix
// + name, --tls-allowed-agents "faultline-agent *") registration only. Each server certificate also
// serves as that side's client certificate: the controller dials agents with its own, an agent
// registers with the controller with its own.
inline constexpr char kControllerName[] = "faultline-controller";
inline constexpr char kCliName[] = "faultline-cli";
inline constexpr char kAgentNamePrefix[] = "faultline-agent ";
// A DNS name in every agent certificate (see --tls-server-name / --agent-tls-server-name).
inline constexpr char kAgentServerName[] = "faultline-agent";

struct CertsOptions {
  std::filesystem::path dir;
  // Agent certificates: one per name, each valid for that host name (DNS or IP) and for the
  // addresses in `agent_hosts` too. They are also the agents' client certificates when they
  // register with the controller.
  std::vector<std::string> agents = {"agent"};
  std::vector<std::string> agent_hosts = {"127.0.0.1", "localhost"};
  // Names/IPs the controller is dialed at (subject alternative names of controller.crt).
  std::vector<std::string> controller_hosts = {"127.0.0.1", "localhost"};
  int days = 365;
  bool force = false;
};

// Writes ca.crt/ca.key, controller.crt/.key, cli.crt/.key and <agent>.crt/.key into dir (keys
// mode 0600). Refuses to overwrite existing files unless force. Returns the files written.
std::vector<std::filesystem::path> InitCerts(const CertsOptions& options);

}  // namespace faultline::transport
