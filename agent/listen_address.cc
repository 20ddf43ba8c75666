#include "agent/listen_address.h"

#include <arpa/inet.h>

#include <stdexcept>

namespace faultline::agent {

std::string ListenAddress::grpc_uri() const { return unix_socket ? "unix://" + path : host_port; }

bool ListenAddress::loopback() const {
  if (unix_socket) return true;
  std::string host = host_port.substr(0, host_port.rfind(':'));
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1") return true;
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) == 1) return (ntohl(a.s_addr) >> 24) == 127;
  return false;
}

ListenAddress ParseListen(const std::string& text) {
  ListenAddress a;
  if (text.starts_with("unix://")) {
    a.unix_socket = true;
    a.path = text.substr(7);
    if (a.path.empty() || a.path.front() != '/') {
      throw std::invalid_argument("--listen " + text + ": unix socket path must be absolute");
    }
    return a;
  }
  std::string hp = text.starts_with("tcp://") ? text.substr(6) : text;
  auto colon = hp.rfind(':');
  if (colon == std::string::npos || colon + 1 == hp.size()) {
    throw std::invalid_argument("--listen " + text + ": want unix:///PATH or tcp://HOST:PORT");
  }
  for (size_t i = colon + 1; i < hp.size(); ++i) {
    if (hp[i] < '0' || hp[i] > '9') {
      throw std::invalid_argument("--listen " + text + ": port must be a number");
    }
  }
  a.host_port = hp;
  return a;
}

}  // namespace faultline::agent
