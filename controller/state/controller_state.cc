#include "controller/state/controller_state.h"

#include <algorithm>

#include "controller/state/etcd_election.h"
#include "controller/state/etcd_store.h"
#include "controller/state/file_store.h"

namespace faultline::controller {

StateUrl ParseStateUrl(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return std::invalid_argument("--state: \"" + url + "\": " + why +
                                 " (expected etcd://HOST:PORT[,HOST:PORT...][/PREFIX])");
  };
  const std::string scheme = "etcd://";
  if (!url.starts_with(scheme)) throw bad("not an etcd:// URL");
  std::string rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  StateUrl out;
  out.prefix = slash == std::string::npos ? kDefaultStatePrefix : rest.substr(slash);
  while (out.prefix.size() > 1 && out.prefix.back() == '/') out.prefix.pop_back();
  if (out.prefix == "/") throw bad("the key prefix is empty");
  if (out.prefix.find("//") != std::string::npos) throw bad("the key prefix has an empty part");
  std::string hosts = rest.substr(0, slash);
  if (hosts.empty()) throw bad("no endpoint");
  size_t start = 0;
  for (;;) {
    size_t comma = hosts.find(',', start);
    std::string ep = hosts.substr(start, comma == std::string::npos ? comma : comma - start);
    size_t colon = ep.rfind(':');
    std::string port = colon == std::string::npos ? "" : ep.substr(colon + 1);
    bool ok = colon != std::string::npos && colon > 0 && !port.empty() && port.size() <= 5 &&
              std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
              std::stoi(port) > 0 && std::stoi(port) < 65536;
    if (!ok) throw bad("endpoint \"" + ep + "\" is not HOST:PORT");
    out.endpoints.push_back(ep);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

ControllerState::ControllerState(const StateConfig& config) {
  const bool tls =
      !config.tls.ca_file.empty() || !config.tls.cert_file.empty() || !config.tls.key_file.empty();
  if (config.url.empty()) {
    if (tls) {
      throw std::invalid_argument(
          "--state-cacert/--state-cert/--state-key: TLS to the state etcd needs --state "
          "etcd://...");
    }
    auto store = std::make_unique<FileStore>(config.dir);
    reports_dir_ = store->dir() / "reports";
    store_ = std::move(store);
    leadership_ = std::make_unique<SoleReplica>(config.self);
    return;
  }
  StateUrl url = ParseStateUrl(config.url);
  if (config.tls.cert_file.empty() != config.tls.key_file.empty()) {
    throw std::invalid_argument(
        "--state-cert/--state-key: a client certificate needs its key and the other way round");
  }
  if (config.election_ttl.count() < 2) {
    throw std::invalid_argument("--election-ttl: must be at least 2s (etcd's shortest lease)");
  }
  // Election RPCs give up well inside the lease so a renewal can be retried on another member
  // in time; store RPCs may wait out a slow disk (their writes are fenced anyway).
  auto election_timeout =
      std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(config.election_ttl) / 3,
                 std::chrono::milliseconds(500), std::chrono::milliseconds(2000));
  try {
    keyspace_ = std::make_unique<EtcdKeyspace>(url.endpoints, url.prefix, std::chrono::seconds(5),
                                               election_timeout, config.tls);
  } catch (const std::invalid_argument& e) {
    // The endpoints were checked above: what is left is a TLS file that cannot be read.
    throw std::invalid_argument(std::string("--state-cacert/--state-cert/--state-key: ") +
                                e.what());
  }
  auto election = std::make_unique<EtcdElection>(
      *keyspace_, ElectionOptions{.self = config.self, .ttl = config.election_ttl});
  store_ = std::make_unique<EtcdStore>(*keyspace_, *election);
  leadership_ = std::move(election);
}

ControllerState::~ControllerState() = default;

}  // namespace faultline::controller
