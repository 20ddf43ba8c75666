#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace faultline::transport {

// PEM files of one side of an mTLS connection, and the flags that named them (for errors).
// For a client: `ca` verifies the server, cert/key are the client's identity. For a server:
// cert/key are its identity and `ca` is what client certificates must chain to.
struct TlsFiles {
  std::string ca, cert, key;
  // Client side: verify the server's certificate for this name instead of the host dialed — for
  // one certificate shared by many hosts (agents on every node of a cluster carry the
  // "faultline-agent" name that `faultline certs init` puts in every agent certificate).
  std::string server_name;
  std::string ca_flag = "--tls-ca", cert_flag = "--tls-cert", key_flag = "--tls-key";

  bool any() const { return !ca.empty() || !cert.empty() || !key.empty(); }
  bool complete() const { return !ca.empty() && !cert.empty() && !key.empty(); }
  // "--tls-cert, --tls-key and --tls-ca", for messages.
  std::string FlagList() const;
  // Throws std::invalid_argument naming the missing flags unless all three or none are given.
  void RequireAllOrNone() const;
};

// Reads a PEM file; throws std::invalid_argument "FLAG: cannot read \"PATH\"".
std::string ReadPem(const std::string& path, const std::string& flag);

// TLS channel credentials: `ca` verifies the server (empty: the system's roots); cert and key,
// both or neither, are the client's certificate. Throws std::invalid_argument naming the flag of
// a missing or unreadable file.
std::shared_ptr<grpc::ChannelCredentials> SslChannelCredentials(const TlsFiles& files);

// A channel to a faultline agent or controller at `address` (see DialTarget). Unix sockets are
// always plaintext: servers serve them so, guarded by the socket's file mode. TCP uses TLS when
// files.ca is given; plaintext TCP is refused off loopback (std::invalid_argument naming the
// flags to give), so nothing faultline sends crosses a network in the clear.
std::shared_ptr<grpc::Channel> Dial(const std::string& address, const TlsFiles& files);

// Server credentials requiring a client certificate that chains to files.ca.
std::shared_ptr<grpc::ServerCredentials> MtlsServerCredentials(const TlsFiles& files);

}  // namespace faultline::transport
