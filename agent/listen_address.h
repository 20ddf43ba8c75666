#pragma once

#include <string>

namespace faultline::agent {

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

// Throws std::invalid_argument naming the problem.
ListenAddress ParseListen(const std::string& text);

}  // namespace faultline::agent
