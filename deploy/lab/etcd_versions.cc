#include "deploy/lab/etcd_versions.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "faults/sys/command.h"
#include "faults/sys/error.h"
#include "faults/sys/unique_fd.h"

namespace faultline::lab {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using experiments::ParseEtcdVersion;

constexpr const char* kSystemEtcd = "/usr/bin/etcd";

fs::path RootOr(const fs::path& root) { return root.empty() ? EtcdRoot() : root; }

fs::path BinaryIn(const fs::path& dir) { return dir / "usr/bin/etcd"; }

std::optional<InstalledEtcd> Describe(const fs::path& dir) {
  fs::path bin = BinaryIn(dir);
  if (::access(bin.c_str(), X_OK) != 0) return std::nullopt;
  InstalledEtcd e;
  try {
    e.version = BinaryEtcdVersion(bin);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  e.binary = bin.string();
  std::ifstream in(dir / "faultline-etcd.json");
  json j = json::parse(in, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    e.suite = j.value("suite", "");
    e.package = j.value("package", "");
  }
  return e;
}

// The mirror of the system's Debian sources (deb822 or one-line format), so a machine behind a
// local mirror fetches from it; deb.debian.org otherwise.
std::string DebianMirror() {
  for (const char* file : {"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"}) {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string first, second, third;
      ls >> first >> second >> third;
      if (first == "URIs:" && second.find("debian-security") == std::string::npos) return second;
      if (first == "deb" && second.starts_with("http") &&
          second.find("debian-security") == std::string::npos) {
        return second;
      }
      if (first == "deb" && second.starts_with("[") && third.starts_with("http") &&
          third.find("debian-security") == std::string::npos) {
        return third;
      }
    }
  }
  return "http://deb.debian.org/debian";
}

sys::CommandResult MustRun(const std::vector<std::string>& argv, std::chrono::seconds timeout,
                           const std::string& what) {
  auto r = sys::RunCommand(argv, timeout);
  if (r.exit_code != 0) {
    std::string err = r.err.empty() ? r.out : r.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    throw std::runtime_error(what + " failed (exit " + std::to_string(r.exit_code) + "): " + err);
  }
  return r;
}

std::string ServedList(const std::map<std::string, std::string>& served) {
  std::string out;
  for (const auto& s : EtcdSuites()) {
    auto it = served.find(s);
    out += (out.empty() ? "" : ", ") + s + " " +
           (it == served.end()             ? std::string("nothing")
            : ParseEtcdVersion(it->second) ? ParseEtcdVersion(it->second)->ToString()
                                           : it->second);
  }
  return out;
}

}  // namespace

const std::vector<std::string>& EtcdSuites() {
  static const std::vector<std::string> suites = {"bookworm", "trixie", "sid"};
  return suites;
}

fs::path EtcdRoot() {
  if (const char* env = std::getenv("FAULTLINE_ETCD_ROOT"); env && *env) return env;
  return "/var/lib/faultline/etcd";
}

EtcdVersion BinaryEtcdVersion(const std::string& binary) {
  auto r = sys::RunCommand({binary, "--version"}, std::chrono::seconds(10));
  auto v = experiments::ParseEtcdVersionOutput(r.out);
  if (r.exit_code != 0 || !v) {
    throw std::runtime_error(binary + " --version did not name an etcd version (exit " +
                             std::to_string(r.exit_code) + ")");
  }
  return *v;
}

std::vector<InstalledEtcd> ListInstalledEtcd(const fs::path& root_opt) {
  std::vector<InstalledEtcd> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(RootOr(root_opt), ec)) {
    std::string name = e.path().filename().string();
    if (name.starts_with(".") || !ParseEtcdVersion(name)) continue;
    if (auto d = Describe(e.path())) out.push_back(*d);
  }
  if (::access(kSystemEtcd, X_OK) == 0) {
    try {
      InstalledEtcd sys{BinaryEtcdVersion(kSystemEtcd), kSystemEtcd, "system", ""};
      bool have = std::any_of(out.begin(), out.end(),
                              [&](const InstalledEtcd& e) { return e.version == sys.version; });
      if (!have) out.push_back(sys);
    } catch (const std::exception&) {
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.version < b.version; });
  return out;
}

InstalledEtcd FindEtcd(const std::string& version, const fs::path& root) {
  auto want = ParseEtcdVersion(version);
  if (!want) {
    throw std::invalid_argument("--etcd-version: \"" + version +
                                "\" is not a version (want e.g. 3.5.16)");
  }
  auto all = ListInstalledEtcd(root);
  std::string have;
  for (const auto& e : all) {
    if (e.version == *want) return e;
    have += (have.empty() ? "" : ", ") + e.version.ToString();
  }
  throw std::invalid_argument("--etcd-version: etcd " + want->ToString() +
                              " is not installed (installed: " + (have.empty() ? "none" : have) +
                              "); `faultline etcd install " + want->ToString() +
                              "` fetches it if a Debian suite serves it");
}

InstalledEtcd InstallEtcd(const std::string& what, const fs::path& root_opt,
                          const std::function<void(const std::string&)>& progress) {
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  const auto& suites = EtcdSuites();
  bool is_suite = std::find(suites.begin(), suites.end(), what) != suites.end();
  auto want = ParseEtcdVersion(what);
  if (!is_suite && !want) {
    std::string names;
    for (const auto& s : suites) names += (names.empty() ? "" : ", ") + s;
    throw std::invalid_argument("\"" + what + "\": want a version (e.g. 3.5.16) or a suite (" +
                                names + ")");
  }
  fs::path root = RootOr(root_opt);
  if (want) {
    if (auto d = Describe(root / want->ToString())) return *d;
  }
  fs::path apt = root / ".apt";
  fs::create_directories(apt / "lists/partial");
  fs::create_directories(apt / "cache/archives/partial");
  // One install at a time per root: apt's own locks would refuse a second one with a less
  // helpful message, and the unpacking below is not meant to race.
  sys::UniqueFd lock(::open((apt / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock) sys::ThrowErrno("open " + (apt / "lock").string());
  if (::flock(lock.get(), LOCK_EX) != 0) sys::ThrowErrno("flock " + (apt / "lock").string());
  {
    std::ofstream list(apt / "sources.list", std::ios::trunc);
    for (const auto& s : suites) {
      list << "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] " << DebianMirror()
           << " " << s << " main\n";
    }
  }
  std::vector<std::string> opts = {
      "-o", "Dir::Etc::sourcelist=" + (apt / "sources.list").string(),
      "-o", "Dir::Etc::sourceparts=/dev/null",
      "-o", "Dir::State::Lists=" + (apt / "lists").string(),
      "-o", "Dir::Cache=" + (apt / "cache").string(),
      "-o", "Dir::Cache::archives=" + (apt / "cache/archives").string(),
      "-o", "APT::Sandbox::User=root",
      "-q"};
  auto with = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin() + 1, opts.begin(), opts.end());
    return argv;
  };
  say("apt-get update (" + std::to_string(suites.size()) + " suites, private lists in " +
      apt.string() + ")");
  MustRun(with({"apt-get", "update"}), std::chrono::seconds(600), "apt-get update");
  auto madison = MustRun(with({"apt-cache", "madison", "etcd-server"}), std::chrono::seconds(60),
                         "apt-cache madison etcd-server");
  // "etcd-server |   3.5.30-2 | http://deb.debian.org/debian sid/main amd64 Packages"
  std::map<std::string, std::string> served;  // suite -> Debian version
  std::istringstream lines(madison.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> cols;
    std::istringstream ls(line);
    std::string col;
    while (std::getline(ls, col, '|')) {
      col.erase(0, col.find_first_not_of(' '));
      col.erase(col.find_last_not_of(' ') + 1);
      cols.push_back(col);
    }
    if (cols.size() < 3) continue;
    for (const auto& s : suites) {
      if (cols[2].find(" " + s + "/") != std::string::npos && !served.count(s)) {
        served[s] = cols[1];
      }
    }
  }
  std::string suite, deb_version;
  for (const auto& [s, v] : served) {
    auto upstream = ParseEtcdVersion(v);
    if ((is_suite && s == what) || (!is_suite && upstream && *upstream == *want)) {
      suite = s;
      deb_version = v;
    }
  }
  if (suite.empty()) {
    throw std::invalid_argument((is_suite ? "suite " + what + " serves no etcd-server"
                                          : "no Debian suite serves etcd " + want->ToString()) +
                                " (they serve now: " + ServedList(served) + ")");
  }
  EtcdVersion version = *ParseEtcdVersion(deb_version);
  fs::path dest = root / version.ToString();
  if (auto d = Describe(dest)) return *d;
  fs::path download = apt / "download";
  fs::remove_all(download);
  fs::create_directories(download);
  say("apt-get download etcd-server=" + deb_version + " (" + suite + ")");
  // apt-get download writes into its working directory; RunCommand has none, so sh sets it.
  std::vector<std::string> dl = {"/bin/sh", "-c", "cd \"$1\" && shift && exec \"$@\"", "sh",
                                 download.string()};
  for (const auto& a : with({"apt-get", "download", "etcd-server=" + deb_version})) {
    dl.push_back(a);
  }
  MustRun(dl, std::chrono::seconds(600), "apt-get download etcd-server=" + deb_version);
  fs::path deb;
  for (const auto& e : fs::directory_iterator(download)) {
    if (e.path().extension() == ".deb") deb = e.path();
  }
  if (deb.empty())
    throw std::runtime_error("apt-get download left no .deb in " + download.string());
  fs::path tmp = root / (".tmp-" + version.ToString());
  fs::remove_all(tmp);
  MustRun({"dpkg", "-x", deb.string(), tmp.string()}, std::chrono::seconds(120),
          "dpkg -x " + deb.string());
  EtcdVersion got = BinaryEtcdVersion(BinaryIn(tmp).string());
  if (got != version) {
    fs::remove_all(tmp);
    throw std::runtime_error(suite + "'s etcd-server " + deb_version + " says it is etcd " +
                             got.ToString() + ", not " + version.ToString());
  }
  {
    std::ofstream meta(tmp / "faultline-etcd.json");
    meta << json{{"version", version.ToString()},
                 {"suite", suite},
                 {"package", "etcd-server=" + deb_version}}
                .dump()
         << "\n";
  }
  fs::rename(tmp, dest);
  fs::remove_all(download);
  say("etcd " + version.ToString() + " in " + dest.string());
  auto d = Describe(dest);
  if (!d) throw std::runtime_error(dest.string() + ": installed etcd does not run");
  return *d;
}

EtcdFlagChoice ChooseEtcdFlags(
    const std::map<std::string, std::string>& wanted,
    const std::function<bool(const std::string&, const std::string&)>& accepts,
    const std::string& version_for_errors) {
  EtcdFlagChoice c;
  std::vector<std::string> refused;
  for (const auto& [name, value] : wanted) {
    if (accepts(name, value)) {
      c.given[name] = value;
    } else if (name.starts_with("experimental-")) {
      c.dropped.push_back(name);
    } else {
      refused.push_back("--" + name + "=" + value);
    }
  }
  if (!refused.empty()) {
    std::string list;
    for (const auto& r : refused) list += (list.empty() ? "" : ", ") + r;
    throw std::invalid_argument("--etcd-flag: etcd " + version_for_errors + " refuses " + list +
                                " (no such flag, or a value it cannot parse)");
  }
  return c;
}

bool EtcdAcceptsFlag(const std::string& binary, const std::string& name, const std::string& value) {
  auto r =
      sys::RunCommand({binary, "--" + name + "=" + value, "--version"}, std::chrono::seconds(10));
  return r.exit_code == 0;
}

}  // namespace faultline::lab
