#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace faultline::controller {

// A write was refused because this replica is no longer (or not) the active controller: another
// replica holds the election, so this one must stop acting at once. Never retried.
class FencedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The controller's durable state: one JSON document per (kind, id). Kinds: experiments,
// schedules, runs, leases. Implementations: FileStore (embedded, one controller) and EtcdStore
// (an etcd cluster shared by replicas; every write is fenced on holding the election).
// Put/Remove throw FencedError when fenced, std::runtime_error when the store cannot be reached;
// either way nothing was written.
class StateStore {
 public:
  virtual ~StateStore() = default;

  virtual void Put(const std::string& kind, const std::string& id, const nlohmann::json& doc) = 0;
  virtual std::optional<nlohmann::json> Get(const std::string& kind,
                                            const std::string& id) const = 0;
  virtual void Remove(const std::string& kind, const std::string& id) = 0;
  // Every document of a kind, by id. A document that does not parse is skipped and reported
  // through `bad` (it can only come from outside tampering: writes are atomic).
  virtual std::map<std::string, nlohmann::json> List(
      const std::string& kind, std::vector<std::string>* bad = nullptr) const = 0;
  // Where the state lives, for logs ("/var/lib/...", "etcd://a:2379/faultline/controller").
  virtual std::string Describe() const = 0;
  // Whether several replicas share this store: then documents any replica may write (agent
  // registrations, which reach whichever replica an agent dials) live here, not in memory.
  virtual bool shared() const { return false; }
  // A write any replica may make, active or not (not fenced): only for documents that are not
  // the active replica's decisions (agent registrations). Throws std::runtime_error when the
  // store cannot be reached.
  virtual void PutUnfenced(const std::string& kind, const std::string& id,
                           const nlohmann::json& doc) {
    Put(kind, id, doc);
  }
};

// Ids become file names and key suffixes: throws std::invalid_argument for an empty id, one with
// '/', or one starting with '.'.
void ValidateStateId(const std::string& id);

}  // namespace faultline::controller
