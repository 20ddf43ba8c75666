#include "controller/state/etcd_keyspace.h"

namespace faultline::controller {

EtcdKeyspace::EtcdKeyspace(const std::vector<std::string>& endpoints, std::string prefix,
                           std::chrono::milliseconds store_timeout,
                           std::chrono::milliseconds election_timeout,
                           const verify::TlsOptions& tls)
    : client_(endpoints, Options(store_timeout, tls)),
      election_client_(endpoints, Options(election_timeout, tls)),
      prefix_(std::move(prefix)) {}

verify::ClientOptions EtcdKeyspace::Options(std::chrono::milliseconds timeout,
                                            const verify::TlsOptions& tls) {
  return {.timeout = timeout,
          .tls = !tls.ca_file.empty() || !tls.cert_file.empty() || !tls.key_file.empty(),
          .tls_files = tls};
}

std::string EtcdKeyspace::Describe() const {
  std::string out = "etcd://";
  for (size_t i = 0; i < client_.size(); ++i) out += (i ? "," : "") + client_.endpoint(i);
  return out + prefix_ + (client_.options().tls ? " (TLS)" : "");
}

}  // namespace faultline::controller
