#include "controller/state/etcd_keyspace.h"

namespace faultline::controller {

EtcdKeyspace::EtcdKeyspace(const std::vector<std::string>& endpoints, std::string prefix,
                           std::chrono::milliseconds store_timeout,
                           std::chrono::milliseconds election_timeout)
    : client_(endpoints, verify::ClientOptions{.timeout = store_timeout}),
      election_client_(endpoints, verify::ClientOptions{.timeout = election_timeout}),
      prefix_(std::move(prefix)) {}

std::string EtcdKeyspace::Describe() const {
  std::string out = "etcd://";
  for (size_t i = 0; i < client_.size(); ++i) out += (i ? "," : "") + client_.endpoint(i);
  return out + prefix_;
}

}  // namespace faultline::controller
