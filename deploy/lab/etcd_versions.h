#pragma once

// etcd builds the lab can run: the system's (/usr/bin/etcd) and those `faultline etcd install`
// unpacked from Debian's archive into ROOT/VERSION (ROOT is $FAULTLINE_ETCD_ROOT or
// /var/lib/faultline/etcd). The system's etcd is never replaced. scripts/install-etcd.sh makes the
// same layout before faultline is built (install-deps.sh runs it).

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "experiments/etcd_version.h"

namespace faultline::lab {

using experiments::EtcdVersion;

// The Debian suites faultline fetches etcd from, oldest first.
const std::vector<std::string>& EtcdSuites();

std::filesystem::path EtcdRoot();

struct InstalledEtcd {
  EtcdVersion version;
  std::string binary;   // path of the etcd executable
  std::string suite;    // Debian suite it came from; "system" for /usr/bin/etcd
  std::string package;  // "etcd-server=3.5.16-4"
};

// Every etcd the lab can run, by version (the system's too, unless an installed copy of the same
// version is there). Directories whose etcd does not run are left out.
std::vector<InstalledEtcd> ListInstalledEtcd(const std::filesystem::path& root = {});

// The etcd binary of `version`. Throws std::invalid_argument naming the installed versions and
// the command that installs the one asked for.
InstalledEtcd FindEtcd(const std::string& version, const std::filesystem::path& root = {});

// The version `binary --version` reports. Throws std::runtime_error if it does not run.
EtcdVersion BinaryEtcdVersion(const std::string& binary);

// Fetches etcd-server from Debian (`what` is a suite name or a version) with a private apt
// configuration under ROOT/.apt, unpacks it into ROOT/VERSION and checks that `etcd --version`
// says VERSION. A version no suite serves is an error naming what the suites serve now.
// Returns the installed build (the existing one if it was there already).
InstalledEtcd InstallEtcd(const std::string& what, const std::filesystem::path& root = {},
                          const std::function<void(const std::string&)>& progress = {});

// etcd flags for the lab, chosen per binary. An experimental flag (experimental-*) that this
// version lacks is left out and reported in `dropped`; any other flag it refuses is an error.
struct EtcdFlagChoice {
  std::map<std::string, std::string> given;  // name (no leading "--") -> value
  std::vector<std::string> dropped;          // names left out
};
// `accepts(name, value)` says whether the binary takes `--name=value`.
EtcdFlagChoice ChooseEtcdFlags(
    const std::map<std::string, std::string>& wanted,
    const std::function<bool(const std::string&, const std::string&)>& accepts,
    const std::string& version_for_errors);
// Whether `binary` accepts `--name=value`: etcd parses every flag before acting on --version, so
// `etcd --name=value --version` exits 0 exactly when the flag exists and the value parses. (Some
// flags, e.g. --experimental-snapshot-catchup-entries in 3.5, exist without being in --help.)
bool EtcdAcceptsFlag(const std::string& binary, const std::string& name, const std::string& value);

}  // namespace faultline::lab
