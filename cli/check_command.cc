#include "cli/check_command.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "controller/verify/checks.h"
#include "controller/verify/history_checks.h"
#include "controller/verify/workload.h"
#include "faults/core/duration.h"

namespace faultline::cli {

namespace verify = faultline::verify;

namespace {

constexpr int kPass = 0;
constexpr int kCheckFailed = 1;
constexpr int kUsage = 2;

int Print(const std::vector<verify::CheckResult>& rs, const std::string& output,
          std::ostream& out) {
  if (output == "json") {
    out << verify::ToJson(rs).dump(2) << "\n";
  } else {
    out << verify::RenderTable(rs);
  }
  return verify::AllPassed(rs) ? kPass : kCheckFailed;
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
  std::unique_ptr<verify::EtcdClient> client;
  try {
    verify::ClientOptions o;
    o.timeout = std::chrono::milliseconds(args.timeout_ms);
    o.tls = args.tls || !args.tls_ca.empty() || !args.tls_cert.empty();
    o.tls_files = {args.tls_ca, args.tls_cert, args.tls_key};
    client = std::make_unique<verify::EtcdClient>(verify::SplitEndpoints(args.endpoints), o);
  } catch (const std::invalid_argument& e) {
    err << "faultline: error: " << e.what() << "\n";
    return kUsage;
  }
  // Nothing answering is a connection problem, not a cluster verdict.
  std::vector<verify::MemberStatus> status = verify::CollectStatus(*client);
  bool any = false;
  for (const auto& m : status) any = any || m.answered;
  if (!any) {
    err << "faultline: error: no etcd endpoint answered: " << status.front().error
        << (status.size() > 1 ? " (and " + std::to_string(status.size() - 1) + " more)" : "")
        << "\n";
    return kUsage;
  }
  verify::ClusterCheckOptions co;
  co.convergence_timeout = std::chrono::milliseconds(args.convergence_ms);
  co.prefixes = args.prefixes;
  co.quota_bytes = args.quota_bytes;
  return Print(verify::RunClusterChecks(*client, co), args.output, out);
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
  verify::History h;
  try {
    h = verify::LoadJsonl(in);
  } catch (const std::exception& e) {
    err << "faultline: error: history " << args.file << ": " << e.what() << "\n";
    return kUsage;
  }
  // A file that is not a history, or one that recorded nothing, proves nothing: saying
  // "linearizable: 0 ops" would let a broken recording pass a gate.
  if (!h.has_header || (h.ops.empty() && h.watch_events.empty())) {
    err << "faultline: error: history " << args.file << ": nothing to check: "
        << (!h.has_header ? "no header line {\"kind\":\"header\",\"format\":"
                            "\"faultline-history\"} (not a faultline history, or empty)"
                          : "the history holds no operation and no watch event")
        << "\n";
    return kCheckFailed;
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
      verify::ExportEdn(h, *dest);
    } else {
      verify::SaveJsonl(h, *dest);
    }
    dest->flush();
  }
  return Print(verify::CheckHistory(h), args.output, *results);
}

int RunWorkload(const WorkloadArgs& args, std::ostream& out, std::ostream& err) {
  std::string why;
  auto duration = faults::ParseDuration(args.duration, &why);
  if (!duration || duration->count() <= 0) {
    err << "faultline: error: --duration " << args.duration << ": "
        << (duration ? "must be longer than 0" : why) << "\n";
    return kUsage;
  }
  std::unique_ptr<verify::Workload> w;
  try {
    verify::WorkloadOptions o;
    o.endpoints = verify::SplitEndpoints(args.endpoints);
    o.client.tls = !args.tls_ca.empty() || !args.tls_cert.empty();
    o.client.tls_files = {args.tls_ca, args.tls_cert, args.tls_key};
    o.clients = args.clients;
    o.keys = args.keys;
    o.rate = args.rate;
    o.linearizable_reads = !args.serializable;
    o.pinned = !args.spread;
    o.seed = args.seed;
    o.prefix = args.prefix;
    w = std::make_unique<verify::Workload>(o);
  } catch (const std::invalid_argument& e) {
    err << "faultline: error: " << e.what() << "\n";
    return kUsage;
  }
  // Opened before the run: a bad path must not cost the whole workload.
  std::ofstream file;
  if (!args.out.empty()) {
    file.open(args.out, std::ios::trunc);
    if (!file) {
      err << "faultline: error: --out: cannot write \"" << args.out << "\"\n";
      return kUsage;
    }
  }
  w->Start();
  std::this_thread::sleep_for(*duration);
  w->Stop();
  const verify::History& h = w->history();
  int64_t ok = 0, failed = 0, unknown = 0;
  for (const auto& s : verify::LatencyPerSecond(h)) {
    ok += s.ok;
    failed += s.failed;
    unknown += s.unknown;
  }
  if (ok == 0) {
    err << "faultline: error: no operation succeeded against " << args.endpoints << "\n";
    return kUsage;
  }
  if (file.is_open()) {
    verify::SaveJsonl(h, file);
    file.close();
    if (!file) {
      err << "faultline: error: --out: writing \"" << args.out << "\" failed\n";
      return kUsage;
    }
  }
  (args.check ? err : out) << "workload under " << w->prefix() << ": " << ok << " ok, " << failed
                           << " failed, " << unknown << " unknown"
                           << (args.out.empty() ? "" : "; history in " + args.out) << "\n";
  return args.check ? Print(verify::CheckHistory(h), args.output, out) : kPass;
}

void AddWorkloadCommand(CLI::App& app) {
  auto wa = std::make_shared<WorkloadArgs>();
  auto* w = app.add_subcommand(
      "workload", "record a client history against etcd (for check history, Jepsen, porcupine)");
  w->add_option("--endpoints", wa->endpoints, "etcd client endpoints, HOST:PORT,HOST:PORT,...")
      ->required();
  w->add_option("--duration", wa->duration, "how long to run")->capture_default_str();
  w->add_option("--clients", wa->clients, "concurrent clients")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  w->add_option("--keys", wa->keys, "size of the key set")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  w->add_option("--rate", wa->rate, "ops per second across all clients (0: as fast as they go)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  w->add_flag("--serializable", wa->serializable, "serializable gets (default: linearizable)");
  w->add_flag("--spread", wa->spread, "each op to the next endpoint (default: a client each)");
  w->add_option("--seed", wa->seed, "seed of the op mix")->capture_default_str();
  w->add_option("--prefix", wa->prefix, "key prefix, empty when the run starts");
  w->add_option("--out", wa->out, "write the history here (JSON lines)");
  w->add_flag("--check", wa->check, "check the history at the end (exit 1 if a check fails)");
  auto* wo = w->add_option("-o,--output", wa->output, "output format of --check")
                 ->check(CLI::IsMember({"table", "json"}));
  w->add_option("--cacert", wa->tls_ca, "CA bundle (PEM) to verify etcd");
  w->add_option("--cert", wa->tls_cert, "client certificate (PEM)");
  w->add_option("--key", wa->tls_key, "client key (PEM)");
  w->callback([wa, w, wo] {
    WorkloadArgs args = *wa;
    args.output = RootOutput(w, wa->output, wo->count() > 0);
    int code = RunWorkload(args, std::cout, std::cerr);
    if (code != 0) {
      std::cout.flush();
      std::exit(code);
    }
  });
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
