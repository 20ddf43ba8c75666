#include "cli/run_command.h"

#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "controller/runner/report.h"
#include "controller/runner/runner.h"
#include "deploy/lab/lab.h"
#include "experiments/loader.h"
#include "faultline/v1/controller.grpc.pb.h"
#include "faults/core/duration.h"
#include "proto/transport/tls.h"

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

// The lab `--lab [NAME]` names: NAME, else the only lab there is.
lab::LabInfo LoadLabFlag(const std::string& requested) {
  std::string name = requested;
  if (name.empty()) {
    auto labs = lab::ListLabs();
    if (labs.empty()) {
      throw std::invalid_argument("--lab: no lab is up under " + lab::DefaultRoot().string() +
                                  " (start one with `faultline lab up`)");
    }
    if (labs.size() > 1) {
      std::string names;
      for (const auto& l : labs) names += (names.empty() ? "" : ", ") + l;
      throw std::invalid_argument("--lab: several labs are up (" + names +
                                  "): say which with --lab NAME");
    }
    name = labs.front();
  }
  try {
    return lab::LoadLab(name);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("--lab: ") + e.what() +
                                "; start one with `faultline lab up`");
  }
}

Environment FromLab(const std::string& requested) {
  lab::LabInfo info = LoadLabFlag(requested);
  Environment env;
  env.from = "lab " + info.name;
  for (const auto& m : info.members) {
    if (m.agent_socket.empty()) {
      throw std::invalid_argument("--lab: member " + m.name +
                                  " has no agent (the lab was started without agents)");
    }
    env.agents.push_back("unix://" + m.agent_socket);
    env.endpoints.push_back(m.client_url);
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
    for (const auto& n : r.notes) std::cerr << "note: " << n.ToString() << "\n";
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
  out << r.experiment << ": "
      << (r.passed()            ? "PASSED"
          : r.state == "failed" ? "FAILED"
                                : "ERROR")
      << " (run " << r.run_id << ", " << static_cast<int>(r.duration_s) << "s)";
  if (!r.error.empty()) out << ": " << r.error;
  out << "\n";
}

void OnSignal(int) { g_cancel = true; }

// A finished run, however it ran: its reports under --report-dir, its verdict (table output), and
// the result kept for the exit code and the JSON list.
void Report(RunResult r, const RunFlags& f, bool json, std::ostream& progress,
            std::vector<RunResult>& results) {
  if (!f.report_dir.empty()) {
    fs::path dir = fs::path(f.report_dir) / r.run_id;
    controller::WriteReports(r, dir);
    progress << "reports in " << dir.string() << " (report.html, report.json, junit.xml)"
             << std::endl;
  }
  if (!json) PrintVerdict(r, std::cout);
  results.push_back(std::move(r));
}

void PrintJson(const std::vector<RunResult>& results) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : results) out.push_back(controller::ToJson(r));
  std::cout << out.dump(2) << std::endl;
}

// Runs every experiment of `files` with the embedded runner; returns the results in order.
std::vector<RunResult> RunEmbedded(const RunFlags& f, const GlobalOptions& g) {
  auto experiments = LoadAll(f.files);
  Environment env = ResolveEnvironment(f);
  std::string why;
  auto lease = faults::ParseDuration(f.lease, &why);
  if (!lease || lease->count() <= 0) throw std::invalid_argument("--lease: " + why);
  controller::RunOptions opt;
  // Agents over TCP with the global --tls-ca/--tls-cert/--tls-key (the lab's are unix sockets).
  opt.connect = controller::ConnectWith(g.agent.tls);
  opt.agents = controller::DescribeAgents(env.agents, opt.connect);
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
    Report(controller::RunExperiment(exp, opt), f, json, progress, results);
  }
  if (json) PrintJson(results);
  return results;
}

// --controller ADDR, else the controller of --lab [NAME], else $FAULTLINE_CONTROLLER, else the
// system one.
std::string ControllerAddress(const std::string& flag,
                              const std::optional<std::string>& lab = std::nullopt) {
  if (lab) {
    if (!flag.empty()) {
      throw std::invalid_argument("--controller, --lab: give one (a lab has its own controller)");
    }
    lab::LabInfo info = LoadLabFlag(*lab);
    if (info.controller.Address().empty()) {
      throw std::invalid_argument("--lab: lab " + info.name +
                                  " runs without a controller (started with --no-controller, "
                                  "or no faultline-controller was found at `lab up`)");
    }
    return info.controller.Address();
  }
  if (!flag.empty()) return flag;
  const char* env = std::getenv("FAULTLINE_CONTROLLER");
  if (env && *env) return env;
  return "unix:///run/faultline/controller.sock";
}

// Over TCP with the global --tls-ca/--tls-cert/--tls-key; plaintext only to a unix socket or
// loopback (transport::Dial).
std::unique_ptr<v1::Controller::Stub> ConnectController(const std::string& address,
                                                        const GlobalOptions& g) {
  return v1::Controller::NewStub(transport::Dial(address, g.agent.tls));
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  return c;
}

void CheckController(const grpc::Status& st, const std::string& address) {
  if (st.ok()) return;
  if (st.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
    // Manifest errors already carry file:line:col; print them as they are.
    throw std::invalid_argument(st.error_message());
  }
  Check(st, address, "controller");
}

std::string StateName(v1::Run::State s) {
  std::string n = v1::Run::State_Name(s);
  std::transform(n.begin(), n.end(), n.begin(), ::tolower);
  return n;
}

std::string When(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0) return "-";
  return google::protobuf::util::TimeUtil::ToString(ts).substr(0, 19) + "Z";
}

// Submits the files to the controller, starts each now and follows the runs to their end.
std::vector<RunResult> RunRemote(const RunFlags& f, const GlobalOptions& g) {
  const std::string addr = ControllerAddress(f.controller);
  auto stub = ConnectController(addr, g);
  const bool json = g.format() == Format::kJson;
  std::ostream& progress = json ? std::cerr : std::cout;
  std::vector<std::string> run_ids;
  for (const auto& file : f.files) {
    std::ifstream in(file);
    if (!in) throw std::invalid_argument(file + ": cannot read");
    std::stringstream ss;
    ss << in.rdbuf();
    v1::SubmitExperimentRequest req;
    req.set_yaml(ss.str());
    req.set_file_name(file);
    req.set_run_now(true);
    v1::SubmitExperimentResponse resp;
    CheckController(stub->SubmitExperiment(Ctx().get(), req, &resp), addr);
    run_ids.insert(run_ids.end(), resp.run_ids().begin(), resp.run_ids().end());
  }
  std::signal(SIGINT, OnSignal);
  std::vector<RunResult> results;
  for (const auto& id : run_ids) {
    progress << "run " << id << " on controller " << addr << std::endl;
    size_t printed = 0;
    bool cancel_sent = false;
    v1::Run run;
    while (true) {
      v1::GetRunRequest req;
      req.set_id(id);
      CheckController(stub->GetRun(Ctx().get(), req, &run), addr);
      auto j = nlohmann::json::parse(run.report_json().empty() ? "{}" : run.report_json(), nullptr,
                                     false);
      auto events =
          j.is_discarded() ? nlohmann::json::array() : j.value("events", nlohmann::json::array());
      for (; printed < events.size() && !f.quiet; ++printed) {
        const auto& e = events[printed];
        PrintEvent(
            {e.value("t", 0.0), e.value("kind", ""), e.value("step", ""), e.value("agent", ""),
             e.value("member", ""), e.value("fault_id", ""), e.value("message", "")},
            progress);
      }
      if (run.state() != v1::Run::RUNNING) break;
      if (g_cancel && !cancel_sent) {
        v1::CancelRunRequest c;
        c.set_id(id);
        v1::Run ignored;
        stub->CancelRun(Ctx().get(), c, &ignored);
        cancel_sent = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    RunResult r;
    auto j =
        nlohmann::json::parse(run.report_json().empty() ? "{}" : run.report_json(), nullptr, false);
    if (!j.is_discarded() && j.contains("run_id")) {
      r = controller::RunResultFromJson(j);
    } else {
      r.run_id = id;
      r.experiment = run.experiment_name();
      r.state = run.state() == v1::Run::INTERRUPTED ? "error" : StateName(run.state());
      r.error = run.summary();
    }
    Report(std::move(r), f, json, progress, results);
  }
  if (json) PrintJson(results);
  return results;
}

std::vector<RunResult> RunAny(const RunFlags& f, const GlobalOptions& g) {
  if (!f.controller.empty()) {
    if (f.lab || !f.agents.empty()) {
      throw std::invalid_argument("--controller: the controller picks agents; drop --lab/--agents");
    }
    LoadAll(f.files);  // file:line:col errors before anything is sent
    return RunRemote(f, g);
  }
  return RunEmbedded(f, g);
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
  } catch (const RpcError& e) {
    // A standby controller's refusal (FAILED_PRECONDITION, naming the active one) is an answer,
    // not an unreachable controller.
    std::cerr << "faultline: " << e.what() << "\n";
    return e.code() == grpc::StatusCode::UNAVAILABLE ||
                   e.code() == grpc::StatusCode::DEADLINE_EXCEEDED
               ? kExitUnreachable
               : kExitFailed;
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

void AddLabControllerFlag(CLI::App* cmd, std::optional<std::string>& lab) {
  cmd->add_option("--lab", lab, "the controller of this lab (default: the only lab)")
      ->expected(0, 1);
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
    int code = Guard([&] { return ExitFor(RunAny(*rf, g)); });
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
      auto results = RunAny(*gf, g);
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

  auto submit_addr = std::make_shared<std::string>();
  auto submit_lab = std::make_shared<std::optional<std::string>>();
  auto submit_files = std::make_shared<std::vector<std::string>>();
  auto* submit = app.add_subcommand(
      "submit", "store experiments on a controller; those with a schedule start running on it");
  submit->add_option("files", *submit_files, "experiment YAML files")->required();
  submit->add_option("--controller", *submit_addr, "controller address (env FAULTLINE_CONTROLLER)");
  AddLabControllerFlag(submit, *submit_lab);
  submit->callback([&g, submit_addr, submit_lab, submit_files] {
    int code = Guard([&] {
      LoadAll(*submit_files);  // every file:line:col error before anything is sent
      std::string addr = ControllerAddress(*submit_addr, *submit_lab);
      auto stub = ConnectController(addr, g);
      for (const auto& file : *submit_files) {
        std::ifstream in(file);
        std::stringstream ss;
        ss << in.rdbuf();
        v1::SubmitExperimentRequest req;
        req.set_yaml(ss.str());
        req.set_file_name(file);
        v1::SubmitExperimentResponse resp;
        CheckController(stub->SubmitExperiment(Ctx().get(), req, &resp), addr);
        for (const auto& n : resp.experiment_names()) {
          std::cout << "submitted " << n << " (" << file << ")\n";
        }
      }
      return kExitOk;
    });
    Exit(code);
  });

  auto runs_addr = std::make_shared<std::string>();
  auto runs_lab = std::make_shared<std::optional<std::string>>();
  auto runs_id = std::make_shared<std::string>();
  auto* runs = app.add_subcommand("runs", "list a controller's runs, or show one (ID)");
  runs->add_option("id", *runs_id, "run id");
  runs->add_option("--controller", *runs_addr, "controller address (env FAULTLINE_CONTROLLER)");
  AddLabControllerFlag(runs, *runs_lab);
  runs->callback([&g, runs_addr, runs_lab, runs_id] {
    std::string addr = ControllerAddress(*runs_addr, *runs_lab);
    auto stub = ConnectController(addr, g);
    if (!runs_id->empty()) {
      v1::GetRunRequest req;
      req.set_id(*runs_id);
      v1::Run got;
      CheckController(stub->GetRun(Ctx().get(), req, &got), addr);
      if (g.format() == Format::kJson) {
        std::cout << got.report_json() << "\n";
        return;
      }
      std::cout << "run        " << got.id() << "\nexperiment " << got.experiment_name()
                << "\nstate      " << StateName(got.state()) << "\ntrigger    " << got.trigger()
                << "\nstarted    " << When(got.started_at()) << "\nended      "
                << When(got.ended_at()) << "\nsummary    " << got.summary() << "\n";
      auto j = nlohmann::json::parse(got.report_json().empty() ? "{}" : got.report_json(), nullptr,
                                     false);
      if (!j.is_discarded() && j.contains("run_id")) {
        std::cout << "\n";
        PrintVerdict(controller::RunResultFromJson(j), std::cout);
      }
      return;
    }
    v1::ListRunsResponse resp;
    CheckController(stub->ListRuns(Ctx().get(), {}, &resp), addr);
    if (g.format() == Format::kJson) {
      std::cout << ToJson(resp) << "\n";
      return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : resp.runs()) {
      rows.push_back({r.id(), r.experiment_name(), StateName(r.state()), r.trigger(),
                      When(r.started_at()), r.summary().substr(0, 60)});
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a[4] < b[4]; });
    std::cout << Table({"RUN", "EXPERIMENT", "STATE", "TRIGGER", "STARTED", "SUMMARY"}, rows);
  });

  auto sched_addr = std::make_shared<std::string>();
  auto sched_lab = std::make_shared<std::optional<std::string>>();
  auto sched_name = std::make_shared<std::string>();
  auto* sched = app.add_subcommand("schedule", "list, pause or resume a controller's schedules");
  sched->require_subcommand(1);
  sched->add_option("--controller", *sched_addr, "controller address (env FAULTLINE_CONTROLLER)");
  AddLabControllerFlag(sched, *sched_lab);
  auto print_states = [&g](const std::vector<v1::ScheduleState>& states) {
    if (g.format() == Format::kJson) {
      v1::ListSchedulesResponse r;
      for (const auto& s : states) *r.add_schedules() = s;
      std::cout << ToJson(r) << "\n";
      return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& s : states) {
      std::string active;
      for (const auto& a : s.active_run_ids()) active += (active.empty() ? "" : ",") + a;
      rows.push_back({s.experiment_name(), s.cron(), s.paused() ? "paused" : "active",
                      When(s.last_scheduled()), When(s.next_run()), std::to_string(s.skipped()),
                      std::to_string(s.missed()), active.empty() ? "-" : active});
    }
    std::cout << Table(
        {"EXPERIMENT", "CRON", "STATE", "LAST", "NEXT", "SKIPPED", "MISSED", "ACTIVE RUNS"}, rows);
  };
  sched->add_subcommand("list", "every schedule with its next run")->callback([=, &g] {
    std::string addr = ControllerAddress(*sched_addr, *sched_lab);
    v1::ListSchedulesResponse resp;
    CheckController(ConnectController(addr, g)->ListSchedules(Ctx().get(), {}, &resp), addr);
    print_states({resp.schedules().begin(), resp.schedules().end()});
  });
  for (bool pause : {true, false}) {
    auto* c = sched->add_subcommand(pause ? "pause" : "resume",
                                    pause ? "stop starting runs (the active one continues)"
                                          : "start runs again from now on (no catch-up)");
    c->add_option("name", *sched_name, "experiment name")->required();
    c->callback([=, &g] {
      std::string addr = ControllerAddress(*sched_addr, *sched_lab);
      auto stub = ConnectController(addr, g);
      v1::ScheduleRef ref;
      ref.set_experiment_name(*sched_name);
      v1::ScheduleState st;
      CheckController(pause ? stub->PauseSchedule(Ctx().get(), ref, &st)
                            : stub->ResumeSchedule(Ctx().get(), ref, &st),
                      addr);
      print_states({st});
    });
  }

  auto status_addr = std::make_shared<std::string>();
  auto status_lab = std::make_shared<std::optional<std::string>>();
  auto* ctl = app.add_subcommand("controller", "a controller's replicas (HA: which one is active)");
  ctl->require_subcommand(1);
  auto* ctl_status =
      ctl->add_subcommand("status", "this replica's role, the active one, the store");
  ctl_status->add_option("--controller", *status_addr,
                         "controller address (env FAULTLINE_CONTROLLER)");
  AddLabControllerFlag(ctl_status, *status_lab);
  ctl_status->callback([&g, status_addr, status_lab] {
    std::string addr = ControllerAddress(*status_addr, *status_lab);
    v1::ControllerStatus st;
    CheckController(ConnectController(addr, g)->GetStatus(Ctx().get(), {}, &st), addr);
    if (g.format() == Format::kJson) {
      std::cout << ToJson(st) << "\n";
      return;
    }
    std::cout << "replica    " << st.self().id() << " (" << st.role() << ")\nactive     "
              << (st.active().id().empty() ? "none"
                                           : st.active().id() + " at " + st.active().address())
              << "\nstate      " << st.state_store() << "\n";
    if (!st.last_step_down().empty()) std::cout << "stepped down: " << st.last_step_down() << "\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : st.replicas()) {
      rows.push_back({r.id(), r.address(), r.id() == st.active().id() ? "active" : "standby"});
    }
    std::cout << "\n" << Table({"REPLICA", "ADDRESS", "ROLE"}, rows);
  });
}

}  // namespace faultline::cli
