// `faultline reproduce FILE --etcd-version V`: a bug-reproduction session in one command. Each run
// gets a fresh lab of that etcd version built to the experiment's requirements, runs the
// experiment with its own seed, and tears the lab down; the first failing run's reports (and its
// members' etcd logs) are kept. Prints how often the experiment failed and how long the first
// failure took.

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/lab_requirements.h"
#include "cli/run_command.h"
#include "controller/runner/report.h"
#include "controller/runner/runner.h"
#include "deploy/lab/etcd_versions.h"
#include "experiments/loader.h"
#include "faults/core/duration.h"

namespace faultline::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
void OnStop(int) { g_stop = true; }

struct ReproduceFlags {
  std::string file;
  std::string etcd_version;
  int runs = 10;
  bool until_fail = false;
  std::optional<uint64_t> seed;
  std::string report_dir;
  std::string lab_name;
  std::string lease = "15s";
  bool verbose = false;
  bool bug_check = false;
};

// `--bug-check` exit status when there is nothing to judge (the version is neither affected nor
// fixed): the automake/ctest convention for a skipped test, so the bugs tier reports it skipped.
constexpr int kExitNothingToJudge = 77;

struct RunLine {
  int index = 0;
  uint64_t seed = 0;
  std::string state;  // passed, failed, error, cancelled
  std::string why;    // failing checks or the error
  double seconds = 0;
};

// "affected", "fixed" or "not named by the bug" (a version in both is affected: the bug shows).
std::string BugExpectation(const v1::Bug& bug, const experiments::EtcdVersion& v) {
  if (experiments::VersionRange::Parse(bug.affected()).Contains(v)) return "affected";
  if (!bug.fixed().empty() && experiments::VersionRange::Parse(bug.fixed()).Contains(v)) {
    return "fixed";
  }
  return "not named by the bug";
}

std::string FailingChecks(const controller::RunResult& r) {
  std::string out;
  for (const auto* c : r.failing()) out += (out.empty() ? "" : "; ") + c->name + ": " + c->summary;
  return out.empty() ? r.error : out;
}

// Keeps what a failing run leaves behind: its reports and each member's etcd log.
void KeepEvidence(const controller::RunResult& r, const lab::LabInfo& info, const fs::path& dir) {
  controller::WriteReports(r, dir);
  for (const auto& m : info.members) {
    std::error_code ec;
    fs::copy_file(m.dir + "/etcd.log", dir / (m.name + "-etcd.log"),
                  fs::copy_options::overwrite_existing, ec);
  }
}

// One run: a fresh lab, the experiment on it. The lab is left up for the caller to keep
// evidence from and take down; `state` is the run's, or "error" (the lab or the runner threw)
// or "cancelled".
struct Attempt {
  std::string state, why;
  controller::RunResult result;
  std::optional<lab::LabInfo> info;
};

Attempt RunInAFreshLab(const v1::Experiment& exp, const std::string& version,
                       const std::string& lab_name, std::chrono::nanoseconds lease, bool verbose,
                       std::ostream& out) {
  Attempt a;
  lab::LabOptions o = LabOptionsFor(exp, version, lab_name);
  if (verbose) o.progress = [&](const std::string& s) { out << "  lab: " << s << "\n"; };
  try {
    a.info = lab::Up(o);
    if (g_stop) {
      a.state = "cancelled";
      return a;
    }
    controller::RunOptions opt;
    std::vector<std::string> agents;
    for (const auto& m : a.info->members) {
      agents.push_back("unix://" + m.agent_socket);
      opt.etcd_endpoints.push_back(m.client_url);
    }
    opt.agents = controller::DescribeAgents(agents);
    opt.lease = std::chrono::duration_cast<std::chrono::milliseconds>(lease);
    opt.cancel = &g_stop;
    if (verbose) {
      opt.on_event = [&](const controller::TimelineEvent& e) {
        out << "  [" << static_cast<int>(e.t) << "s] " << e.kind << " " << e.step << " "
            << e.message << "\n";
      };
    }
    a.result = controller::RunExperiment(exp, opt);
    a.state = controller::StateName(a.result.state);
    a.why = a.result.passed() ? "" : FailingChecks(a.result);
  } catch (const std::exception& e) {
    a.state = "error";
    a.why = e.what();
  }
  return a;
}

int Reproduce(const ReproduceFlags& f, const GlobalOptions& g) {
  auto exps = experiments::LoadFileOrThrow(f.file);
  if (exps.size() != 1) {
    throw std::invalid_argument(f.file + ": holds " + std::to_string(exps.size()) +
                                " experiments; reproduce takes a file with one");
  }
  v1::Experiment exp = exps.front();
  ReproduceFlags flags = f;
  if (flags.bug_check && !exp.has_bug()) {
    throw std::invalid_argument("--bug-check: " + exp.name() + " has no metadata.bug");
  }
  if (flags.runs < 1) throw std::invalid_argument("--runs: want at least 1");
  // The version must exist before the first lab: say so now, not after a failed `lab up`.
  lab::InstalledEtcd etcd;
  try {
    etcd = lab::FindEtcd(f.etcd_version);
  } catch (const std::invalid_argument& e) {
    if (!flags.bug_check) throw;
    // The bugs tier on a machine without that build: skipped, and saying why.
    std::cout << "--bug-check: " << e.what() << " (scripts/install-etcd.sh installs the three); "
              << "skipped\n";
    return kExitNothingToJudge;
  }
  const std::string version = etcd.version.ToString();
  if (exp.has_cluster() && !experiments::VersionIn(version, exp.cluster().etcd_version())) {
    if (flags.bug_check) {
      // The row cannot run on this version (e.g. it needs a flag the version lacks): the bugs
      // tier reports it skipped with the reason, never passed and never failed.
      std::cout << "--bug-check: " << exp.name() << " is written for etcd "
                << exp.cluster().etcd_version() << " (spec.cluster.etcdVersion), not " << version
                << "; skipped\n";
      return kExitNothingToJudge;
    }
    throw std::invalid_argument("--etcd-version: " + exp.name() + " is written for etcd " +
                                exp.cluster().etcd_version() + ", not " + version);
  }
  std::string why;
  auto lease = faults::ParseDuration(f.lease, &why);
  if (!lease || lease->count() <= 0) throw std::invalid_argument("--lease: " + why);
  const uint64_t base_seed = f.seed ? *f.seed : std::random_device{}();
  const std::string lab_name = f.lab_name.empty() ? "rp" + std::to_string(::getpid()) : f.lab_name;
  const fs::path report_dir = f.report_dir.empty()
                                  ? fs::path("reproduce-" + exp.name() + "-" + version)
                                  : fs::path(f.report_dir);
  const bool json = g.format() == Format::kJson;
  std::ostream& out = json ? std::cerr : std::cout;

  std::signal(SIGINT, OnStop);
  std::signal(SIGTERM, OnStop);
  std::string expectation;
  if (exp.has_bug()) {
    expectation = BugExpectation(exp.bug(), etcd.version);
    out << exp.name() << ": " << exp.bug().issue() << " (" << exp.bug().symptom() << "); etcd "
        << version << " is " << expectation << "\n";
  }
  if (flags.bug_check) {
    // The bugs tier: an affected version must fail within the row's budget, a fixed one must
    // pass a run.
    if (expectation == "affected") {
      flags.until_fail = true;
      flags.runs = static_cast<int>(std::max<uint32_t>(exp.bug().runs(), 1));
    } else if (expectation == "fixed") {
      flags.until_fail = false;
      flags.runs = 1;
    } else {
      out << "--bug-check: etcd " << version << " is in neither metadata.bug.affected ("
          << exp.bug().affected() << ") nor fixed (" << exp.bug().fixed()
          << "): nothing to judge\n";
      return kExitNothingToJudge;
    }
  }
  out << "reproduce " << exp.name() << " on etcd " << version << " (" << etcd.binary
      << "): " << (flags.until_fail ? "until it fails, at most " : "") << flags.runs
      << " run(s), seeds from " << base_seed << ", a fresh lab " << lab_name << " per run"
      << std::endl;

  std::vector<RunLine> lines;
  std::optional<double> first_failure_s;
  std::string kept;
  const auto t0 = Clock::now();
  for (int i = 0; i < flags.runs && !g_stop; ++i) {
    RunLine line;
    line.index = i + 1;
    line.seed = base_seed + static_cast<uint64_t>(i);
    exp.set_seed(line.seed);
    const auto run_t0 = Clock::now();
    Attempt a = RunInAFreshLab(exp, version, lab_name, *lease, flags.verbose, out);
    line.state = a.state;
    line.why = a.why;
    if (line.state == "failed" && kept.empty()) {
      fs::path dir = report_dir / a.result.run_id;
      KeepEvidence(a.result, *a.info, dir);
      kept = dir.string();
      first_failure_s = std::chrono::duration<double>(Clock::now() - t0).count();
    }
    try {
      lab::Down(lab_name);
    } catch (const std::exception& e) {
      out << "lab down " << lab_name << ": " << e.what() << std::endl;
    }
    line.seconds = std::chrono::duration<double>(Clock::now() - run_t0).count();
    char secs[32];
    snprintf(secs, sizeof secs, "%.1fs", line.seconds);
    out << "run " << line.index << "/" << flags.runs << " seed " << line.seed << ": " << line.state
        << " in " << secs << (line.why.empty() ? "" : " (" + line.why + ")") << std::endl;
    lines.push_back(line);
    if (line.state == "failed" && flags.until_fail) break;
  }

  int failed = 0, passed = 0, errors = 0;
  std::string failing_seeds;
  for (const auto& l : lines) {
    failed += l.state == "failed";
    passed += l.state == "passed";
    errors += l.state == "error";
    if (l.state == "failed")
      failing_seeds += (failing_seeds.empty() ? "" : ",") + std::to_string(l.seed);
  }
  const int decided = failed + passed;
  if (json) {
    nlohmann::json runs = nlohmann::json::array();
    for (const auto& l : lines) {
      runs.push_back({{"run", l.index},
                      {"seed", l.seed},
                      {"state", l.state},
                      {"why", l.why},
                      {"seconds", l.seconds}});
    }
    std::cout << nlohmann::json{{"experiment", exp.name()},
                                {"etcd_version", version},
                                {"expectation", expectation},
                                {"runs", runs},
                                {"reproduced", failed},
                                {"passed", passed},
                                {"errors", errors},
                                {"first_failure_s", first_failure_s
                                                        ? nlohmann::json(*first_failure_s)
                                                        : nlohmann::json(nullptr)},
                                {"reports", kept}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << exp.name() << " on etcd " << version << ": reproduced in " << failed << " of "
              << decided << " run(s)";
    if (errors) std::cout << " (" << errors << " more ended in an error)";
    if (!failing_seeds.empty()) std::cout << ", failing seeds " << failing_seeds;
    if (first_failure_s) {
      char s[32];
      snprintf(s, sizeof s, "%.1fs", *first_failure_s);
      std::cout << "; first failure after " << s << ", reports in " << kept;
    }
    if (g_stop) std::cout << "; stopped by a signal";
    std::cout << "\n";
  }
  if (g_stop) return kExitFailed;
  if (flags.bug_check) {
    bool met = expectation == "affected" ? failed > 0 : failed == 0 && passed == flags.runs;
    std::cout << "bug-check: etcd " << version << " is " << expectation << "; expected "
              << (expectation == "affected"
                      ? "a failure within " + std::to_string(flags.runs) + " run(s)"
                      : "a passing run")
              << ": " << (met ? "met" : "NOT met") << "\n";
    return met ? kExitOk : kExitFailed;
  }
  if (failed > 0) return kExitFailed;
  return errors > 0 ? kExitUnreachable : kExitOk;
}

}  // namespace

void AddReproduceCommand(CLI::App& app, GlobalOptions& g) {
  auto f = std::make_shared<ReproduceFlags>();
  auto* cmd = app.add_subcommand(
      "reproduce",
      "run an experiment again and again, each time on a fresh lab of one etcd version, and "
      "report how often it fails (exit 1 if it failed at least once)");
  cmd->add_option("file", f->file, "experiment YAML (one experiment)")->required();
  cmd->add_option("--etcd-version", f->etcd_version, "installed etcd version (faultline etcd list)")
      ->required();
  auto* runs = cmd->add_option("--runs", f->runs, "runs (with --until-fail: at most this many)")
                   ->capture_default_str();
  cmd->add_flag("--until-fail", f->until_fail, "stop at the first failing run");
  (void)runs;
  cmd->add_option("--seed", f->seed, "seed of the first run (run i uses seed+i-1); default random");
  cmd->add_option("--report-dir", f->report_dir,
                  "where the first failing run's reports and etcd logs go (default "
                  "./reproduce-EXPERIMENT-VERSION)");
  cmd->add_option("--name", f->lab_name, "lab name (default rp<pid>)");
  cmd->add_option("--lease", f->lease, "lease of every injected fault")->capture_default_str();
  cmd->add_flag("--verbose", f->verbose, "print lab bring-up and run events");
  cmd->add_flag("--bug-check", f->bug_check,
                "judge against metadata.bug (the bugs test tier): on an affected version exit 0 "
                "iff it fails within metadata.bug.runs runs, on a fixed one iff a run passes; "
                "exit 77 if the version is neither");
  cmd->callback([f, &g] {
    int code = kExitOk;
    try {
      code = Reproduce(*f, g);
    } catch (const experiments::LoadError& e) {
      std::cerr << e.what();
      code = kExitUsage;
    } catch (const std::invalid_argument& e) {
      std::cerr << "faultline: " << e.what() << "\n";
      code = kExitUsage;
    }
    if (code != kExitOk) {
      std::cout.flush();
      std::cerr.flush();
      std::_Exit(code);
    }
  });
}

}  // namespace faultline::cli
