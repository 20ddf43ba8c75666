#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace faultline::cli {

// What `faultline certs init` makes: one CA and a certificate per role, all ECDSA P-256.
// Identities are the certificates' common names; agents accept only kControllerName and
// kCliName as clients (see faultline-agent --tls-allowed-clients).
inline constexpr char kControllerName[] = "faultline-controller";
inline constexpr char kCliName[] = "faultline-cli";

struct CertsOptions {
  std::filesystem::path dir;
  // Agent certificates: one per name, each valid for that host name (DNS or IP) and for the
  // addresses in `agent_hosts` too.
  std::vector<std::string> agents = {"agent"};
  std::vector<std::string> agent_hosts = {"127.0.0.1", "localhost"};
  std::vector<std::string> controller_hosts = {"127.0.0.1", "localhost"};
  int days = 365;
  bool force = false;
};

// Writes ca.crt/ca.key, controller.crt/.key, cli.crt/.key and <agent>.crt/.key into dir (keys
// mode 0600). Refuses to overwrite existing files unless force. Returns the files written.
std::vector<std::filesystem::path> InitCerts(const CertsOptions& options);

}  // namespace faultline::cli
