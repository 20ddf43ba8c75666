#include "proto/transport/address.h"

#include <arpa/inet.h>

#include <stdexcept>

namespace faultline::transport {
namespace {

bool LoopbackHostPort(const std::string& host_port) {
  std::string host = host_port.substr(0, host_port.rfind(':'));
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1") return true;
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) == 1) return (ntohl(a.s_addr) >> 24) == 127;
  return false;
}

}  // namespace

std::string ListenAddress::grpc_uri() const { return unix_socket ? "unix://" + path : host_port; }

bool ListenAddress::loopback() const { return unix_socket || LoopbackHostPort(host_port); }

ListenAddress ParseListen(const std::string& text, const std::string& flag) {
  ListenAddress a;
  if (text.starts_with("unix://") || text.starts_with("/")) {
    a.unix_socket = true;
    a.path = text.starts_with("/") ? text : text.substr(7);
    if (a.path.empty() || a.path.front() != '/') {
      throw std::invalid_argument(flag + " " + text + ": unix socket path must be absolute");
    }
    return a;
  }
  std::string hp = text.starts_with("tcp://") ? text.substr(6) : text;
  auto colon = hp.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == hp.size()) {
    throw std::invalid_argument(flag + " " + text + ": want unix:///PATH or tcp://HOST:PORT");
  }
  for (size_t i = colon + 1; i < hp.size(); ++i) {
    if (hp[i] < '0' || hp[i] > '9') {
      throw std::invalid_argument(flag + " " + text + ": port must be a number");
    }
  }
  a.host_port = hp;
  return a;
}

std::string DialTarget(const std::string& address) {
  if (address.starts_with("unix:")) return address;
  if (!address.empty() && address.front() == '/') return "unix://" + address;
  if (address.starts_with("tcp://")) return address.substr(6);
  return address;
}

bool IsLoopback(const std::string& address) {
  std::string target = DialTarget(address);
  return target.starts_with("unix:") || LoopbackHostPort(target);
}

}  // namespace faultline::transport
