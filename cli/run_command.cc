#include "cli/run_command.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "controller/runner/report.h"
#include "controller/runner/runner.h"
#include "experiments/loader.h"
#include "faults/core/duration.h"

namespace faultline::cli {
namespace {

namespace fs = std::filesystem;
using controller::RunResult;

// Where the embedded runner finds agents and etcd.
struct Environment {
  std::vector<std::string> agents;     // agent addresses
  std::vector<std::string> endpoints;  // etcd client URLs
  std::string from;                    // for messages
};

struct RunFlags {
  std::vector<std::string> files;
  std::string controller;
  std::optional<std::string> lab;
  bool lab_flag = false;
  std::vector<std::string> agents;
  std::vector<std::string> endpoints;
  std::string report_dir;
  std::string junit;
  std::string lease = "15s";
  bool quiet = false;
};

std::atomic<bool> g_cancel{false};

fs::path LabRoot() {
  const char* env = std::getenv("FAULTLINE_LAB_ROOT");
  return env && *env ? fs::path(env) : fs::path("/var/lib/faultline/lab");
}

Environment FromLab(const std::string& requested) {
  fs::path root = LabRoot();
  std::string name = requested;
  if (name.empty()) {
    // The only lab there is, else the default one.
    std::vector<std::string> found;
    std::error_code ec;
    for (const auto& d : fs::directory_iterator(root, ec)) {
      if (fs::exists(d.path() / "lab.json")) found.push_back(d.path().filename());
    }
    name = found.size() == 1 ? found.front() : "default";
  }
  fs::path file = root / name / "lab.json";
  std::ifstream in(file);
  if (!in) {
    throw std::invalid_argument("--lab: no lab \"" + name + "\" (" + file.string() +
                                " missing; start one with `faultline lab up`)");
  }
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("members")) {
    throw std::invalid_argument("--lab: " + file.string() + " is not a lab description");
  }
  Environment env;
  env.from = "lab " + name;
  for (const auto& m : j["members"]) {
    if (m.value("agent_socket", "").empty()) {
      throw std::invalid_argument("--lab: member " + m.value("name", "?") +
                                  " has no agent (the lab was started without agents)");
    }
    env.agents.push_back("unix://" + m["agent_socket"].get<std::string>());
    env.endpoints.push_back(m.value("client_url", ""));
  }
  return env;
}

std::vector<std::string> SplitCommas(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const auto& s : in) {
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, ',')) {
      if (!part.empty()) out.push_back(part);
    }
  }
  return out;
}

Environment ResolveEnvironment(const RunFlags& f) {
  if (f.lab_flag || f.lab) return FromLab(f.lab.value_or(""));
  Environment env;
  env.agents = SplitCommas(f.agents);
  env.endpoints = SplitCommas(f.endpoints);
  env.from = "flags";
  if (env.agents.empty()) {
    throw std::invalid_argument(
        "no agents: give --lab [NAME], --controller ADDR, or --agents ADDR,... with "
        "--endpoints URL,...");
  }
  if (env.endpoints.empty()) throw std::invalid_argument("--endpoints: etcd client URLs needed");
  return env;
}

std::vector<v1::Experiment> LoadAll(const std::vector<std::string>& files) {
  std::vector<v1::Experiment> out;
  experiments::Diagnostics errors;
  for (const auto& f : files) {
    auto r = experiments::LoadFile(f);
    errors.insert(errors.end(), r.errors.begin(), r.errors.end());
    for (auto& e : r.experiments) out.push_back(std::move(e));
  }
  // Nothing runs unless every file loads: a gate must not pass on a half-read suite.
  if (!errors.empty()) throw experiments::LoadError(errors);
  return out;
}

void PrintEvent(const controller::TimelineEvent& e, std::ostream& out) {
  char t[32];
  std::snprintf(t, sizeof t, "[%7.2fs]", e.t);
  out << t << " " << e.kind;
  if (!e.step.empty()) out << " " << e.step;
  if (!e.member.empty()) {
    out << " @" << e.member;
  } else if (!e.agent.empty()) {
    out << " @" << e.agent;
  }
  if (!e.fault_id.empty()) out << " " << e.fault_id;
  if (!e.message.empty()) out << ": " << e.message;
  out << std::endl;
}

void PrintVerdict(const RunResult& r, std::ostream& out) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : r.checks) {
    rows.push_back({c.slo ? "slo" : "check", c.name, c.passed ? "pass" : "FAIL", c.summary});
  }
  if (!rows.empty()) out << Table({"TYPE", "NAME", "VERDICT", "SUMMARY"}, rows);
  out << r.experiment << ": " << (r.passed() ? "PASSED" : r.state == "failed" ? "FAILED"
                                                                             : "ERROR")
      << " (run " << r.run_id << ", " << static_cast<int>(r.duration_s) << "s)";
  if (!r.error.empty()) out << ": " << r.error;
  out << "\n";
}

void OnSignal(int) { g_cancel = true; }

// Runs every experiment of `files` with the embedded runner; returns the results in order.
std::vector<RunResult> RunEmbedded(const RunFlags& f, const GlobalOptions& g) {
  auto experiments = LoadAll(f.files);
  Environment env = ResolveEnvironment(f);
  std::string why;
  auto lease = faults::ParseDuration(f.lease, &why);
  if (!lease || lease->count() <= 0) throw std::invalid_argument("--lease: " + why);
  controller::RunOptions opt;
  opt.agents = controller::DescribeAgents(env.agents);
  opt.etcd_endpoints = env.endpoints;
  opt.lease = std::chrono::duration_cast<std::chrono::milliseconds>(*lease);
  opt.cancel = &g_cancel;
  const bool json = g.format() == Format::kJson;
  std::ostream& progress = json ? std::cerr : std::cout;
  if (!f.quiet) opt.on_event = [&](const controller::TimelineEvent& e) { PrintEvent(e, progress); };
  // Ctrl-C cancels the run and recovers its faults instead of leaving them to the lease.
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::vector<RunResult> results;
  for (const auto& exp : experiments) {
    if (g_cancel) break;
    progress << "running " << exp.name() << " (" << exp.source() << ") against "
             << opt.agents.size() << " agents from " << env.from << std::endl;
    RunResult r = controller::RunExperiment(exp, opt);
    if (!f.report_dir.empty()) {
      fs::path dir = fs::path(f.report_dir) / r.run_id;
      controller::WriteReports(r, dir);
      progress << "reports in " << dir.string() << " (report.html, report.json, junit.xml)"
               << std::endl;
    }
    if (!json) PrintVerdict(r, std::cout);
    results.push_back(std::move(r));
  }
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : results) out.push_back(controller::ToJson(r));
    std::cout << out.dump(2) << std::endl;
  }
  return results;
}

int ExitFor(const std::vector<RunResult>& results) {
  bool any_error = false, all_ok = !results.empty();
  for (const auto& r : results) {
    any_error = any_error || r.state == "error" || r.state == "cancelled";
    all_ok = all_ok && r.passed();
  }
  (void)any_error;
  return all_ok ? kExitOk : kExitFailed;
}

int Guard(const std::function<int()>& body) {
  try {
    return body();
  } catch (const experiments::LoadError& e) {
    std::cerr << e.what();
    if (std::string(e.what()).back() != '\n') std::cerr << "\n";
    return kExitUsage;
  } catch (const std::invalid_argument& e) {
    std::cerr << "faultline: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "faultline: " << e.what() << "\n";
    return kExitUnreachable;
  }
}

// main() maps only exceptions to exit codes, and a failed gate is not an exception: leave with
// the verdict's code once everything (reports included, already synced) is written.
void Exit(int code) {
  if (code == kExitOk) return;
  std::cout.flush();
  std::cerr.flush();
  std::_Exit(code);
}

void AddEnvironmentFlags(CLI::App* cmd, RunFlags& f) {
  cmd->add_option("--controller", f.controller,
                  "run through this faultline-controller (HOST:PORT or unix socket)");
  cmd->add_option("--lab", f.lab, "agents and etcd of this lab (default: the only lab)")
      ->expected(0, 1);
  cmd->add_option("--agents", f.agents, "agent addresses, comma-separated (without --lab)");
  cmd->add_option("--endpoints", f.endpoints, "etcd client URLs, comma-separated (without --lab)");
  cmd->add_option("--lease", f.lease,
                  "lease of every injected fault; renewed every third of it while the step lasts")
      ->capture_default_str();
  cmd->add_flag("--quiet", f.quiet, "no live progress");
}

}  // namespace

void AddControllerCommands(CLI::App& app, GlobalOptions& g) {
  auto rf = std::make_shared<RunFlags>();
  auto* run = app.add_subcommand("run", "run an experiment now and print its verdict");
  run->add_option("file", rf->files, "experiment YAML")->required()->expected(1);
  AddEnvironmentFlags(run, *rf);
  run->add_option("--report-dir", rf->report_dir,
                  "write report.json, junit.xml and report.html under DIR/RUN_ID");
  run->callback([rf, &g] {
    rf->lab_flag = rf->lab.has_value();
    int code = Guard([&] { return ExitFor(RunEmbedded(*rf, g)); });
    Exit(code);
  });

  auto gf = std::make_shared<RunFlags>();
  auto* gate = app.add_subcommand(
      "gate", "run experiments and exit 0 only if every check and SLO passed (release gate)");
  gate->add_option("files", gf->files, "experiment YAML files")->required();
  AddEnvironmentFlags(gate, *gf);
  gate->add_option("--junit", gf->junit, "write a JUnit XML report here")->required();
  gate->add_option("--report-dir", gf->report_dir, "also write each run's reports here");
  gate->callback([gf, &g] {
    gf->lab_flag = gf->lab.has_value();
    int code = Guard([&] {
      auto results = RunEmbedded(*gf, g);
      controller::WriteFileAtomic(gf->junit, controller::RenderJUnit(results));
      std::vector<std::string> failing;
      for (const auto& r : results) {
        if (r.state == "error" || r.state == "cancelled") {
          failing.push_back(r.experiment + ": run " + r.state + ": " + r.error);
        }
        for (const auto* c : r.failing()) {
          failing.push_back(r.experiment + ": " + c->name + ": " + c->summary);
        }
      }
      std::cout << "gate: " << results.size() << " experiment(s), "
                << (failing.empty() ? "all checks and SLOs passed"
                                    : std::to_string(failing.size()) + " failing:")
                << "\n";
      for (const auto& f : failing) std::cout << "  " << f << "\n";
      std::cout << "JUnit report: " << gf->junit << "\n";
      return failing.empty() && !results.empty() ? kExitOk : kExitFailed;
    });
    Exit(code);
  });
}

}  // namespace faultline::cli
