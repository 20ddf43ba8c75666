#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace faultline::transport {

// Who may call what over mTLS, by the common name of the client certificate (which the TLS
// handshake has already verified against the CA). A name is exact, or a prefix when it ends in
// '*' ("faultline-agent *" matches every agent certificate of `faultline certs init`). Each rule
// allows every method, or only the listed full method names ("/faultline.v1.Controller/Register").
class PeerPolicy {
 public:
  // Adds a rule; empty names are ignored.
  void Allow(const std::vector<std::string>& names, std::vector<std::string> methods = {});
  // No rule: any certificate the CA signed gets in.
  bool empty() const { return rules_.empty(); }

  // OK, or PERMISSION_DENIED naming the certificate and what it may not do.
  grpc::Status Check(const grpc::AuthContext& peer, std::string_view method) const;

  // Enforces the policy on every call made over `creds` (TLS server credentials), before any
  // service code runs, so no handler can forget the check.
  void Enforce(grpc::ServerCredentials& creds) const;

 private:
  struct Rule {
    std::vector<std::string> names;
    std::vector<std::string> methods;  // empty: all
  };
  std::vector<Rule> rules_;
};

}  // namespace faultline::transport
