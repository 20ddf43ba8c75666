#pragma once

#include <string>

namespace faultline::transport {

// A --listen value: "unix:///run/faultline/agent.sock", "tcp://HOST:PORT" or "HOST:PORT".
struct ListenAddress {
  bool unix_socket = false;
  std::string path;       // unix socket path
  std::string host_port;  // tcp
  // The address as gRPC's server builder takes it.
  std::string grpc_uri() const;
  // True for unix sockets and TCP on 127.0.0.0/8, ::1 or localhost.
  bool loopback() const;
};

// Throws std::invalid_argument naming `flag` and the problem.
ListenAddress ParseListen(const std::string& text, const std::string& flag = "--listen");

// The gRPC target for an address to dial: "/PATH" or "unix:///PATH" (a unix socket),
// "tcp://HOST:PORT" or "HOST:PORT".
std::string DialTarget(const std::string& address);

// True when dialing `address` stays on this host: a unix socket, or TCP to 127.0.0.0/8, ::1 or
// localhost.
bool IsLoopback(const std::string& address);

}  // namespace faultline::transport
