#include "controller/state/file_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <stdexcept>

#include "controller/runner/report.h"

namespace faultline::controller {

namespace fs = std::filesystem;

FileStore::FileStore(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
  for (const char* k : {"experiments", "schedules", "runs", "leases"}) {
    fs::create_directories(dir_ / k);
  }
  lock_fd_ = ::open((dir_ / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    throw std::runtime_error("--state-dir " + dir_.string() + ": " + strerror(errno));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    throw std::runtime_error("--state-dir " + dir_.string() +
                             ": in use by another faultline-controller");
  }
}

FileStore::~FileStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

fs::path FileStore::Path(const std::string& kind, const std::string& id) const {
  ValidateStateId(id);  // ids become file names: nothing may leave the kind's directory
  return dir_ / kind / (id + ".json");
}

void FileStore::Put(const std::string& kind, const std::string& id, const nlohmann::json& doc) {
  WriteFileAtomic(Path(kind, id), doc.dump(1) + "\n");
}

std::optional<nlohmann::json> FileStore::Get(const std::string& kind, const std::string& id) const {
  std::ifstream in(Path(kind, id));
  if (!in) return std::nullopt;
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

void FileStore::Remove(const std::string& kind, const std::string& id) {
  std::error_code ec;
  fs::remove(Path(kind, id), ec);
}

std::map<std::string, nlohmann::json> FileStore::List(const std::string& kind,
                                                      std::vector<std::string>* bad) const {
  std::map<std::string, nlohmann::json> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_ / kind, ec)) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path());
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) {
      if (bad) bad->push_back(e.path().string());
      continue;
    }
    out[e.path().stem().string()] = std::move(j);
  }
  return out;
}

}  // namespace faultline::controller
