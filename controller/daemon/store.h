#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace faultline::controller {

// The embedded state store: one JSON document per object under STATE_DIR/<kind>/<id>.json,
// each written atomically (temp file, fsync, rename, fsync dir), so a crash leaves either the
// old or the new document, never a torn one. Kinds: experiments, schedules, runs, leases.
// Holds an exclusive flock on STATE_DIR/lock: two controllers must never share a store.
class StateStore {
 public:
  explicit StateStore(std::filesystem::path dir);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  void Put(const std::string& kind, const std::string& id, const nlohmann::json& doc);
  std::optional<nlohmann::json> Get(const std::string& kind, const std::string& id) const;
  void Remove(const std::string& kind, const std::string& id);
  // Every document of a kind, by id. A document that does not parse is skipped and reported
  // through `bad` (it can only come from outside tampering: writes are atomic).
  std::map<std::string, nlohmann::json> List(const std::string& kind,
                                             std::vector<std::string>* bad = nullptr) const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path Path(const std::string& kind, const std::string& id) const;
  std::filesystem::path dir_;
  int lock_fd_ = -1;
};

}  // namespace faultline::controller
