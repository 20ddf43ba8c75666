#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/lab_command.h"
#include "cli/output.h"
#include "deploy/lab/etcd_versions.h"

namespace faultline::cli {

void AddEtcdCommand(CLI::App& app, GlobalOptions& g) {
  auto* etcd =
      app.add_subcommand("etcd", "etcd builds the lab can run (Debian's bookworm, trixie and sid)");
  etcd->require_subcommand(1);

  auto what = std::make_shared<std::vector<std::string>>();
  auto* install = etcd->add_subcommand(
      "install", "fetch etcd-server from Debian and unpack it under " + lab::EtcdRoot().string() +
                     "/VERSION (the system's etcd is left alone)");
  install->add_option("what", *what, "versions (3.5.16) or suites (bookworm, trixie, sid)")
      ->required();
  install->callback([what] {
    for (const auto& w : *what) {
      auto e =
          lab::InstallEtcd(w, {}, [](const std::string& s) { std::cerr << "etcd: " << s << "\n"; });
      std::cout << "etcd " << e.version.ToString() << " (" << e.suite << ", " << e.package << ") "
                << e.binary << "\n";
    }
  });

  etcd->add_subcommand("list", "installed etcd versions")->callback([&g] {
    auto all = lab::ListInstalledEtcd();
    if (g.format() == Format::kJson) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& e : all) {
        out.push_back({{"version", e.version.ToString()},
                       {"binary", e.binary},
                       {"suite", e.suite},
                       {"package", e.package}});
      }
      std::cout << out.dump(2) << "\n";
      return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : all) {
      rows.push_back(
          {e.version.ToString(), e.suite, e.package.empty() ? "-" : e.package, e.binary});
    }
    std::cout << Table({"VERSION", "SUITE", "PACKAGE", "BINARY"}, rows);
    if (all.empty()) std::cout << "none; `faultline etcd install sid` fetches one\n";
  });
}

}  // namespace faultline::cli
