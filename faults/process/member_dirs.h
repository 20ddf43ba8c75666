#pragma once

// What process/rejoin empties: the directories an etcd keeps its member state in, read from
// the argv it runs with, so the fault never guesses a path.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace faultline::faults::process {

// etcd's --data-dir and, when set apart, its --wal-dir, as the flag parser reads them (`--f V`,
// `--f=V`, one dash or two; the last one given wins). Throws FaultError when there is no
// --data-dir (etcd would pick one relative to its cwd, which rejoin will not guess), or when a
// directory is not absolute or is "/".
std::vector<std::filesystem::path> EtcdStateDirs(const std::vector<std::string>& argv);

// Removes everything inside `dir` and keeps `dir` itself (it may be a mount point, e.g. the IO
// overlay over etcd's data dir). Returns the number of entries removed at its top level; a
// missing `dir` is empty. Throws FaultError naming the entry it could not remove.
int64_t EmptyDirectory(const std::filesystem::path& dir);

}  // namespace faultline::faults::process
