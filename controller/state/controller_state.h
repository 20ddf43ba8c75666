#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "controller/state/leadership.h"
#include "controller/state/store.h"
#include "controller/verify/client.h"

namespace faultline::controller {

class EtcdKeyspace;

inline constexpr const char* kDefaultStatePrefix = "/faultline/controller";

struct StateUrl {
  std::vector<std::string> endpoints;  // HOST:PORT
  std::string prefix;                  // "/faultline/controller" unless the URL names one
};

// Parses `--state etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`. Throws std::invalid_argument whose
// message names --state, the URL and what is wrong with it.
StateUrl ParseStateUrl(const std::string& url);

struct StateConfig {
  std::string url;            // --state; empty: the embedded store in `dir`
  std::filesystem::path dir;  // --state-dir
  std::chrono::seconds election_ttl{5};
  ReplicaInfo self;
  // TLS to the state etcd (--state-cacert/--state-cert/--state-key); only with `url`.
  verify::TlsOptions tls;
};

// Where a controller keeps its state and who among the replicas is active: the embedded
// FileStore with SoleReplica, or EtcdStore with EtcdElection on a shared etcd.
class ControllerState {
 public:
  // Throws std::invalid_argument (bad --state) or std::runtime_error (state dir in use).
  explicit ControllerState(const StateConfig& config);
  ~ControllerState();
  ControllerState(const ControllerState&) = delete;
  ControllerState& operator=(const ControllerState&) = delete;

  StateStore& store() { return *store_; }
  Leadership& leadership() { return *leadership_; }
  // Where run reports (json, junit, html) are written; empty with etcd state (the report is in
  // the run document, `faultline runs ID -o json`).
  const std::filesystem::path& reports_dir() const { return reports_dir_; }

 private:
  // Destroyed in reverse: the store (which fences on the election) before the election, both
  // before the etcd client they share.
  std::unique_ptr<EtcdKeyspace> keyspace_;
  std::unique_ptr<Leadership> leadership_;
  std::unique_ptr<StateStore> store_;
  std::filesystem::path reports_dir_;
};

}  // namespace faultline::controller
