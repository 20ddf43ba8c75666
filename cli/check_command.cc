#include "cli/check_command.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>

#include "controller/etcd/checks.h"
#include "controller/etcd/history_checks.h"

namespace faultline::cli {

namespace etcd = faultline::controller::etcd;

namespace {

constexpr int kPass = 0;
constexpr int kCheckFailed = 1;
constexpr int kUsage = 2;

int Print(const std::vector<etcd::CheckResult>& rs, const std::string& output, std::ostream& out) {
  if (output == "json") {
    out << etcd::ToJson(rs).dump(2) << "\n";
  } else {
    out << etcd::RenderTable(rs);
  }
  return etcd::AllPassed(rs) ? kPass : kCheckFailed;
}

// The root's -o/--output, for `faultline -o json check ...`.
std::string RootOutput(CLI::App* sub, const std::string& own, bool own_given) {
  if (own_given) return own;
  CLI::App* root = sub;
  while (root->get_parent() != nullptr) root = root->get_parent();
  const CLI::Option* o = root->get_option_no_throw("--output");
  if (o != nullptr && o->count() > 0) return o->as<std::string>();
  return own;
}

}  // namespace

int RunCheckEtcd(const CheckEtcdArgs& args, std::ostream& out, std::ostream& err) {
  std::unique_ptr<etcd::EtcdClient> client;
  try {
    etcd::ClientOptions o;
    o.timeout = std::chrono::milliseconds(args.timeout_ms);
    o.tls = args.tls || !args.tls_ca.empty() || !args.tls_cert.empty();
    o.tls_files = {args.tls_ca, args.tls_cert, args.tls_key};
    client = std::make_unique<etcd::EtcdClient>(etcd::SplitEndpoints(args.endpoints), o);
  } catch (const std::invalid_argument& e) {
    err << "faultline: error: " << e.what() << "\n";
    return kUsage;
  }
  // Nothing answering is a connection problem, not a cluster verdict.
  std::vector<etcd::MemberStatus> status = etcd::CollectStatus(*client);
  bool any = false;
  for (const auto& m : status) any = any || m.answered;
  if (!any) {
    err << "faultline: error: no etcd endpoint answered: " << status.front().error
        << (status.size() > 1 ? " (and " + std::to_string(status.size() - 1) + " more)" : "")
        << "\n";
    return kUsage;
  }
  etcd::ClusterCheckOptions co;
  co.convergence_timeout = std::chrono::milliseconds(args.convergence_ms);
  co.prefixes = args.prefixes;
  co.quota_bytes = args.quota_bytes;
  return Print(etcd::RunClusterChecks(*client, co), args.output, out);
}

int RunCheckHistory(const CheckHistoryArgs& args, std::ostream& out, std::ostream& err) {
  if (!args.export_format.empty() && args.export_out.empty()) {
    err << "faultline: error: --export needs -O OUT (a file, or - for stdout)\n";
    return kUsage;
  }
  std::ifstream in(args.file);
  if (!in) {
    err << "faultline: error: history: cannot open \"" << args.file << "\"\n";
    return kUsage;
  }
  etcd::History h;
  try {
    h = etcd::LoadJsonl(in);
  } catch (const std::exception& e) {
    err << "faultline: error: history " << args.file << ": " << e.what() << "\n";
    return kUsage;
  }
  std::ostream* results = &out;
  if (!args.export_format.empty()) {
    std::ofstream file;
    std::ostream* dest = &out;
    if (args.export_out != "-") {
      file.open(args.export_out, std::ios::trunc);
      if (!file) {
        err << "faultline: error: -O: cannot write \"" << args.export_out << "\"\n";
        return kUsage;
      }
      dest = &file;
    } else {
      results = &err;  // stdout carries the export
    }
    if (args.export_format == "edn") {
      etcd::ExportEdn(h, *dest);
    } else {
      etcd::SaveJsonl(h, *dest);
    }
    dest->flush();
  }
  return Print(etcd::CheckHistory(h), args.output, *results);
}

void AddCheckCommand(CLI::App& app) {
  auto* check = app.add_subcommand("check", "verify an etcd cluster or a recorded history");
  check->require_subcommand(1);

  auto ea = std::make_shared<CheckEtcdArgs>();
  auto* e = check->add_subcommand(
      "etcd", "health, convergence, revision, HashKV, key counts, alarms, db size, big keys");
  e->add_option("--endpoints", ea->endpoints, "etcd client endpoints, HOST:PORT,HOST:PORT,...")
      ->required();
  auto* eo = e->add_option("-o,--output", ea->output, "output format")
                 ->check(CLI::IsMember({"table", "json"}));
  e->add_option("--timeout-ms", ea->timeout_ms, "per-request timeout")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  e->add_option("--convergence-ms", ea->convergence_ms, "how long to wait for applied indexes")
      ->check(CLI::Range(0, 3600000))
      ->capture_default_str();
  e->add_option("--prefix", ea->prefixes, "also compare key counts under this prefix (repeat)");
  e->add_option("--quota-bytes", ea->quota_bytes, "the cluster's --quota-backend-bytes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  e->add_flag("--tls", ea->tls, "use TLS (implied by https:// endpoints or --cacert)");
  e->add_option("--cacert", ea->tls_ca, "CA bundle (PEM) to verify etcd");
  e->add_option("--cert", ea->tls_cert, "client certificate (PEM)");
  e->add_option("--key", ea->tls_key, "client key (PEM)");
  e->callback([ea, e, eo] {
    CheckEtcdArgs args = *ea;
    args.output = RootOutput(e, ea->output, eo->count() > 0);
    int code = RunCheckEtcd(args, std::cout, std::cerr);
    if (code != 0) {
      std::cout.flush();
      std::exit(code);
    }
  });

  auto ha = std::make_shared<CheckHistoryArgs>();
  auto* h = check->add_subcommand(
      "history", "linearizability, lost writes, revision order and watch checks on a history");
  h->add_option("file", ha->file, "history in faultline JSON lines")->required();
  auto* ho = h->add_option("-o,--output", ha->output, "output format")
                 ->check(CLI::IsMember({"table", "json"}));
  h->add_option("--export", ha->export_format, "also write the history as edn or jsonl")
      ->check(CLI::IsMember({"edn", "jsonl"}));
  h->add_option("-O", ha->export_out, "where --export writes (a file, or - for stdout)");
  h->callback([ha, h, ho] {
    CheckHistoryArgs args = *ha;
    args.output = RootOutput(h, ha->output, ho->count() > 0);
    int code = RunCheckHistory(args, std::cout, std::cerr);
    if (code != 0) {
      std::cout.flush();
      std::exit(code);
    }
  });
}

}  // namespace faultline::cli
