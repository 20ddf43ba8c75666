#pragma once

#include <atomic>
#include <chrono>
#include <exception>
#include <string>
#include <vector>

#include "controller/verify/client.h"

namespace faultline::controller {

// The state etcd as the store and the election share it: every key under a prefix (so
// deployments can share an etcd), and calls that move on to the next member when one is
// unreachable. Two clients: the election's RPCs must give up well inside its lease so a renewal
// can be retried in time, while a store write may wait out a slow disk (it is fenced anyway).
class EtcdKeyspace {
 public:
  // Throws std::invalid_argument for a bad endpoint (see verify::EtcdClient).
  // `tls`: TLS to the state etcd when any file is set (CA, client certificate and key).
  EtcdKeyspace(const std::vector<std::string>& endpoints, std::string prefix,
               std::chrono::milliseconds store_timeout, std::chrono::milliseconds election_timeout,
               const verify::TlsOptions& tls = {});

  const std::string& prefix() const { return prefix_; }
  // <prefix>/<kind>/<id>; List ranges over <prefix>/<kind>/.
  std::string Key(const std::string& kind, const std::string& id) const {
    return prefix_ + "/" + kind + "/" + id;
  }
  // Held (bound to its lease) by the active replica; its create revision fences every write.
  std::string leader_key() const { return prefix_ + "/leader"; }
  // <prefix>/replicas/<id>, one per live replica, bound to its lease.
  std::string replicas_prefix() const { return prefix_ + "/replicas/"; }
  std::string Describe() const;  // "etcd://a:2379,b:2379/faultline/controller" (+ " (TLS)")
  const verify::EtcdClient& client() const { return client_; }
  const verify::EtcdClient& election_client() const { return election_client_; }

  // f(member index) on the member that answered last, then on the others while the error says
  // the member is unreachable or has no leader; other errors are thrown at once.
  template <typename F>
  auto Call(F&& f) const -> decltype(f(size_t{0})) {
    const size_t n = client_.size();
    const size_t start = cursor_.load();
    std::exception_ptr last;
    for (size_t k = 0; k < n; ++k) {
      size_t i = (start + k) % n;
      try {
        auto r = f(i);
        cursor_.store(i);
        return r;
      } catch (const verify::EtcdError& e) {
        if (e.code() != grpc::StatusCode::UNAVAILABLE &&
            e.code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
          throw;
        }
        last = std::current_exception();
      }
    }
    std::rethrow_exception(last);
  }

 private:
  static verify::ClientOptions Options(std::chrono::milliseconds timeout,
                                       const verify::TlsOptions& tls);
  verify::EtcdClient client_;
  verify::EtcdClient election_client_;
  std::string prefix_;
  mutable std::atomic<size_t> cursor_{0};
};

}  // namespace faultline::controller
