#include "faults/process/member_dirs.h"

#include <optional>

#include "faults/core/errors.h"

namespace faultline::faults::process {
namespace {

// The value of flag `name` in argv as Go's flag package reads it, if given.
std::optional<std::string> FlagValue(const std::vector<std::string>& argv,
                                     const std::string& name) {
  std::optional<std::string> value;
  for (size_t i = 1; i < argv.size(); ++i) {
    std::string a = argv[i];
    if (a == "--") break;  // the flag parser stops here
    if (a.starts_with("--")) {
      a = a.substr(2);
    } else if (a.starts_with("-")) {
      a = a.substr(1);
    } else {
      continue;
    }
    if (a == name && i + 1 < argv.size()) {
      value = argv[++i];
    } else if (a.starts_with(name + "=")) {
      value = a.substr(name.size() + 1);
    }
  }
  return value;
}

std::filesystem::path Checked(const std::string& flag, const std::string& value) {
  std::filesystem::path p(value);
  if (!p.is_absolute()) {
    throw FaultError("rejoin: --" + flag + " \"" + value +
                     "\" is not absolute; rejoin empties it " +
                     "and will not resolve a relative path");
  }
  p = p.lexically_normal();
  if (p == p.root_path()) throw FaultError("rejoin: --" + flag + " is \"/\"; refusing to empty it");
  return p;
}

}  // namespace

std::vector<std::filesystem::path> EtcdStateDirs(const std::vector<std::string>& argv) {
  auto data = FlagValue(argv, "data-dir");
  if (!data || data->empty()) {
    throw FaultError(
        "rejoin: the managed argv has no --data-dir (etcd would use NAME.etcd in its working "
        "directory; rejoin empties the member's state only where the argv names it)");
  }
  std::vector<std::filesystem::path> dirs{Checked("data-dir", *data)};
  auto wal = FlagValue(argv, "wal-dir");
  if (wal && !wal->empty()) {
    auto w = Checked("wal-dir", *wal);
    // A WAL dir inside the data dir goes with it.
    auto rel = w.lexically_relative(dirs[0]);
    if (rel.empty() || rel.string().starts_with("..")) dirs.push_back(w);
  }
  return dirs;
}

int64_t EmptyDirectory(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return 0;
  int64_t removed = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::filesystem::remove_all(e.path(), ec);
    if (ec) throw FaultError("rejoin: cannot remove " + e.path().string() + ": " + ec.message());
    ++removed;
  }
  return removed;
}

}  // namespace faultline::faults::process
