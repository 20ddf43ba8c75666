#pragma once

#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "proto/transport/address.h"
#include "proto/transport/peer_policy.h"
#include "proto/transport/tls.h"

namespace faultline::transport {

// The flags every faultline server takes for its listeners: --listen (repeatable) and mTLS
// (--tls-cert, --tls-key, --tls-client-ca, --tls-allowed-clients).
struct ServerFlags {
  std::vector<std::string> listen;
  TlsFiles tls{.ca_flag = "--tls-client-ca"};
  std::vector<std::string> allowed_clients;
  // allowed_clients without empty entries, or {"*"} (any certificate the CA signed) if none.
  std::vector<std::string> AllowedClients() const;
};

// Adds the flags to `app`; `listen` and `allowed_clients` hold the defaults, shown in --help.
void AddServerFlags(CLI::App& app, ServerFlags& flags, const std::string& allowed_clients_help);

// A server's listening addresses, checked: unix sockets are plaintext (local; the socket is
// mode 0660), TCP on loopback may be plaintext, TCP anywhere else needs mTLS — and over mTLS
// every call is checked against the PeerPolicy before it reaches a service. Removes the unix
// sockets it bound when destroyed.
class Listeners {
 public:
  // Throws std::invalid_argument naming the flag: a bad address, TLS files half given, or a TCP
  // address off loopback without TLS.
  Listeners(const std::vector<std::string>& listen, TlsFiles tls, PeerPolicy policy,
            const std::string& flag = "--listen");
  ~Listeners();
  Listeners(const Listeners&) = delete;
  Listeners& operator=(const Listeners&) = delete;

  bool tls() const { return tls_.any(); }
  const std::vector<ListenAddress>& addresses() const { return addrs_; }

  // Adds every address to `builder` (creating socket directories, removing a stale socket).
  void AddTo(grpc::ServerBuilder& builder);
  // After BuildAndStart: sets socket modes and returns one line per address for the log, e.g.
  // "unix:///run/x.sock" or "10.0.0.1:0 (mTLS) port 43121".
  std::vector<std::string> Started();
  // The TCP port bound for address i (0 for unix sockets), valid after BuildAndStart.
  int port(size_t i) const { return ports_[i]; }

 private:
  std::vector<ListenAddress> addrs_;
  TlsFiles tls_;
  PeerPolicy policy_;
  std::vector<int> ports_;
  bool bound_ = false;  // AddTo ran: the sockets are ours to remove
};

}  // namespace faultline::transport
