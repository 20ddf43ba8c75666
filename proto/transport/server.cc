#include "proto/transport/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace faultline::transport {

void AddServerFlags(CLI::App& app, ServerFlags& f, const std::string& allowed_clients_help) {
  app.add_option("--listen", f.listen,
                 "unix:///PATH or tcp://HOST:PORT (repeatable); TCP off loopback requires mTLS")
      ->capture_default_str();
  app.add_option("--tls-cert", f.tls.cert, "server certificate (PEM) for TCP listeners");
  app.add_option("--tls-key", f.tls.key, "server private key (PEM)");
  app.add_option("--tls-client-ca", f.tls.ca, "CA (PEM) that client certificates must chain to");
  app.add_option("--tls-allowed-clients", f.allowed_clients,
                 allowed_clients_help +
                     "; a trailing * matches a prefix; empty string: any certificate the CA signed")
      ->delimiter(',')
      ->capture_default_str();
}

std::vector<std::string> ServerFlags::AllowedClients() const {
  std::vector<std::string> out;
  for (const auto& n : allowed_clients) {
    if (!n.empty()) out.push_back(n);
  }
  if (out.empty()) out.push_back("*");
  return out;
}

Listeners::Listeners(const std::vector<std::string>& listen, TlsFiles tls, PeerPolicy policy,
                     const std::string& flag)
    : tls_(std::move(tls)), policy_(std::move(policy)) {
  tls_.RequireAllOrNone();
  for (const auto& l : listen) {
    ListenAddress a = ParseListen(l, flag);
    if (!a.loopback() && !tls_.any()) {
      throw std::invalid_argument(flag + " " + a.host_port + " is off loopback: give " +
                                  tls_.FlagList() + " (plaintext is allowed only on loopback)");
    }
    addrs_.push_back(std::move(a));
  }
  if (addrs_.empty()) throw std::invalid_argument(flag + ": at least one address is required");
  ports_.assign(addrs_.size(), 0);
}

Listeners::~Listeners() {
  if (!bound_) return;
  for (const auto& a : addrs_) {
    if (a.unix_socket) ::unlink(a.path.c_str());
  }
}

void Listeners::AddTo(grpc::ServerBuilder& builder) {
  bound_ = true;
  std::shared_ptr<grpc::ServerCredentials> tcp = grpc::InsecureServerCredentials();
  if (tls_.any()) {
    tcp = MtlsServerCredentials(tls_);
    policy_.Enforce(*tcp);
  }
  for (size_t i = 0; i < addrs_.size(); ++i) {
    const auto& a = addrs_[i];
    if (a.unix_socket) {
      std::filesystem::create_directories(std::filesystem::path(a.path).parent_path());
      ::unlink(a.path.c_str());  // a stale socket from a crashed server
      builder.AddListeningPort(a.grpc_uri(), grpc::InsecureServerCredentials());
    } else {
      builder.AddListeningPort(a.grpc_uri(), tcp, &ports_[i]);
    }
  }
}

std::vector<std::string> Listeners::Started() {
  std::vector<std::string> out;
  for (size_t i = 0; i < addrs_.size(); ++i) {
    const auto& a = addrs_[i];
    if (a.unix_socket) {
      ::chmod(a.path.c_str(), 0660);
      out.push_back("unix://" + a.path);
    } else {
      out.push_back(a.host_port + (tls_.any() ? " (mTLS)" : " (plaintext, loopback)") + " port " +
                    std::to_string(ports_[i]));
    }
  }
  return out;
}

}  // namespace faultline::transport
