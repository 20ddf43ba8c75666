#pragma once

#include <filesystem>
#include <string>

namespace faultline::testing {

// Certificates a test needs besides those `faultline certs init` makes (which are the product
// under test), made with the openssl command instead. Each throws std::runtime_error with
// openssl's output when it fails.

// A self-signed CA: DIR/NAME.crt and DIR/NAME.key.
void MakeCa(const std::filesystem::path& dir, const std::string& name);

// A clientAuth certificate DIR/NAME.crt (+ .key) with common name `cn`, signed by the CA
// DIR/ISSUER.crt (+ .key) — e.g. our CA with an identity servers must not accept.
void IssueClientCert(const std::filesystem::path& dir, const std::string& name,
                     const std::string& cn, const std::string& issuer);

// A serverAuth certificate DIR/NAME.crt (+ .key) for the IP address `ip` (CN and subjectAltName),
// signed by the CA DIR/ISSUER.crt (+ .key) — e.g. for an etcd served over TLS on loopback.
void IssueServerCert(const std::filesystem::path& dir, const std::string& name,
                     const std::string& ip, const std::string& issuer);

}  // namespace faultline::testing
