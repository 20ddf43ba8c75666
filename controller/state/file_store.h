#pragma once

#include <filesystem>

#include "controller/state/store.h"

namespace faultline::controller {

// The embedded state store: one JSON document per object under STATE_DIR/<kind>/<id>.json,
// each written atomically (temp file, fsync, rename, fsync dir), so a crash leaves either the
// old or the new document, never a torn one. Holds an exclusive flock on STATE_DIR/lock: two
// controllers must never share a store (the etcd store is for several replicas).
class FileStore final : public StateStore {
 public:
  explicit FileStore(std::filesystem::path dir);
  ~FileStore() override;
  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;

  void Put(const std::string& kind, const std::string& id, const nlohmann::json& doc) override;
  std::optional<nlohmann::json> Get(const std::string& kind, const std::string& id) const override;
  void Remove(const std::string& kind, const std::string& id) override;
  std::map<std::string, nlohmann::json> List(const std::string& kind,
                                             std::vector<std::string>* bad) const override;
  std::string Describe() const override { return dir_.string(); }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path Path(const std::string& kind, const std::string& id) const;
  std::filesystem::path dir_;
  int lock_fd_ = -1;
};

}  // namespace faultline::controller
