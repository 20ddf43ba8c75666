#include "cli/lab_command.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/agent_client.h"
#include "cli/output.h"
#include "controller/verify/checks.h"
#include "controller/verify/liveness_agents.h"
#include "deploy/lab/lab.h"
#include "faultline/v1/controller.grpc.pb.h"
#include "faults/process/proc.h"

namespace faultline::cli {
namespace {

using json = nlohmann::json;

struct LabFlags {
  std::optional<std::string> name;
  std::string root;
};

void AddCommon(CLI::App* cmd, LabFlags& f) {
  cmd->add_option("--name", f.name, "lab name (may be left out when one lab is up)");
  cmd->add_option("--root", f.root,
                  "directory holding the labs (default $FAULTLINE_LAB_ROOT or "
                  "/var/lib/faultline/lab)");
}

// Lab-wide agent health: the agent answers Capabilities within two seconds.
std::string AgentHealth(const lab::MemberInfo& m, const GlobalOptions& g) {
  if (m.agent_socket.empty()) return "-";
  if (m.agent_pid != 0 && !faults::process::SameProcess(m.agent_pid, m.agent_start_time)) {
    return "down (pid " + std::to_string(m.agent_pid) + " gone)";
  }
  AgentAddress a = g.agent;
  a.address = "unix://" + m.agent_socket;
  a.timeout = std::chrono::milliseconds(2000);
  try {
    auto stub = ConnectAgent(a);
    v1::CapabilitiesResponse caps;
    auto ctx = Context(a);
    auto st = stub->Capabilities(ctx.get(), {}, &caps);
    if (!st.ok()) return "down (" + st.error_message() + ")";
    return "ok";
  } catch (const std::exception& e) {
    return std::string("down (") + e.what() + ")";
  }
}

// The lab controller as its users reach it: process alive, gRPC answering on its socket.
struct ControllerHealth {
  std::string state = "-";  // "ok", "down (...)", or "-" for a lab without a controller
  int schedules = 0, paused = 0, runs_active = 0, runs = 0;
};

ControllerHealth LabControllerHealth(const lab::ControllerInfo& c) {
  ControllerHealth h;
  if (c.binary.empty()) return h;
  if (!faults::process::SameProcess(c.pid, c.start_time)) {
    h.state = "down (pid " + std::to_string(c.pid) + " gone)";
    return h;
  }
  // Plaintext is right here: a unix socket in the lab's own directory.
  auto stub =
      v1::Controller::NewStub(grpc::CreateChannel(c.Address(), grpc::InsecureChannelCredentials()));
  auto ctx = [] {
    auto x = std::make_unique<grpc::ClientContext>();
    x->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    return x;
  };
  v1::ListSchedulesResponse sched;
  auto st = stub->ListSchedules(ctx().get(), {}, &sched);
  v1::ListRunsResponse runs;
  if (st.ok()) st = stub->ListRuns(ctx().get(), {}, &runs);
  if (!st.ok()) {
    h.state = "down (" + st.error_message() + ")";
    return h;
  }
  h.state = "ok";
  h.schedules = sched.schedules_size();
  for (const auto& s : sched.schedules()) h.paused += s.paused();
  h.runs = runs.runs_size();
  for (const auto& r : runs.runs()) h.runs_active += r.state() == v1::Run::RUNNING;
  return h;
}

// Each member's view of itself, asked over etcd's gRPC API (controller/verify), in member order.
// (The lab's tests ask etcdctl instead, lab::QueryEtcd, to observe the lab independently.)
std::vector<lab::EtcdStatus> MemberStatuses(const lab::LabInfo& info) {
  std::vector<std::string> endpoints;
  for (const auto& m : info.members) endpoints.push_back(m.client_url);
  verify::EtcdClient client(endpoints, {.timeout = std::chrono::seconds(2)});
  std::vector<lab::EtcdStatus> out;
  size_t i = 0;
  for (const auto& m : verify::CollectStatus(client)) {
    lab::EtcdStatus s;
    s.member = info.members[i++].name;
    s.endpoint = m.endpoint;
    s.reachable = m.answered;
    s.error = m.error;
    s.member_id = m.member_id;
    s.leader = m.leader;
    s.revision = uint64_t(m.revision);
    s.raft_index = m.raft_index;
    s.raft_term = m.raft_term;
    s.raft_applied_index = m.applied_index;
    s.db_size = uint64_t(m.db_size);
    s.version = m.version;
    out.push_back(std::move(s));
  }
  return out;
}

// "etcd 3.5.16 (/var/lib/faultline/etcd/3.5.16/usr/bin/etcd), flags --snapshot-count=100; left
// out (this version lacks them): --experimental-compaction-sleep-interval"
std::string EtcdLine(const lab::LabInfo& info) {
  std::string s =
      "etcd " + (info.etcd_version.empty() ? "?" : info.etcd_version) + " (" + info.etcd + ")";
  std::string flags;
  for (const auto& [n, v] : info.etcd_flags) flags += " --" + n + "=" + v;
  s += flags.empty() ? ", default flags" : ", flags" + flags;
  if (!info.etcd_flags_dropped.empty()) {
    s += "; left out (this version lacks them):";
    for (const auto& d : info.etcd_flags_dropped) s += " --" + d;
  }
  return s;
}

std::string Hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

namespace {

void AddLabUp(CLI::App* lab, GlobalOptions& g) {
  auto up_opts = std::make_shared<lab::LabOptions>();
  auto up_root = std::make_shared<std::string>();
  auto timeout_s = std::make_shared<int>(60);
  auto* up = lab->add_subcommand("up", "create a lab: bridge, namespaces, etcd and agents");
  up->add_option("--members", up_opts->members, "etcd members")
      ->check(CLI::IsMember({3, 5}))
      ->capture_default_str();
  up->add_option("--name", up_opts->name, "lab name")->capture_default_str();
  up->add_option("--etcd", up_opts->etcd, "etcd binary")->capture_default_str();
  up->add_option("--etcd-version", up_opts->etcd_version,
                 "run this installed etcd version instead (see `faultline etcd list`)");
  auto up_flags = std::make_shared<std::vector<std::string>>();
  up->add_option("--etcd-flag", *up_flags,
                 "an etcd flag for every member, NAME=VALUE without dashes (repeatable), e.g. "
                 "snapshot-count=100; an experimental flag this etcd lacks is left out");
  up->add_option("--agent-binary", up_opts->agent,
                 "faultline-agent binary (default: next to faultline, then /usr/sbin)");
  up->add_flag("--no-agents", up_opts->no_agents, "run etcd without an agent per member");
  up->add_option("--controller-binary", up_opts->controller,
                 "faultline-controller binary (default: next to faultline, then /usr/sbin)");
  up->add_flag("--no-controller", up_opts->no_controller, "run the lab without a controller");
  up->add_flag("--ipv6", up_opts->ipv6,
               "etcd on IPv6: members on a private ULA /64 (fd00:fa17:...), URLs in brackets");
  up->add_flag("!--no-overlay", up_opts->overlay,
               "keep etcd's data dir off the FUSE overlay (no IO faults)");
  up->add_option("--intercept-syscalls", up_opts->intercept_syscalls,
                 "etcd syscalls routed to the agent for syscall faults, e.g. fdatasync,fsync")
      ->delimiter(',');
  up->add_option("--root", *up_root, "directory holding the labs");
  up->add_option("--timeout", *timeout_s, "seconds to wait for a healthy cluster")
      ->capture_default_str();
  up->callback([&g, up_opts, up_root, timeout_s, up_flags] {
    lab::LabOptions o = *up_opts;
    for (const auto& f : *up_flags) {
      auto eq = f.find('=');
      std::string name = f.substr(0, eq);
      if (eq == std::string::npos || name.empty() || name.starts_with("-")) {
        throw std::invalid_argument("--etcd-flag " + f +
                                    ": want NAME=VALUE without dashes, e.g. snapshot-count=100");
      }
      o.etcd_flags[name] = f.substr(eq + 1);
    }
    o.root = *up_root;
    o.timeout = std::chrono::seconds(*timeout_s);
    o.progress = [](const std::string& line) { std::cerr << "lab: " << line << "\n"; };
    auto t0 = std::chrono::steady_clock::now();
    lab::LabInfo info = lab::Up(o);
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (g.format() == Format::kJson) {
      std::cout << lab::ToJson(info);
      return;
    }
    char secs[32];
    snprintf(secs, sizeof(secs), "%.1fs", took);
    std::cout << "lab " << info.name << " up in " << secs << ": " << info.members.size()
              << " members of etcd " << info.etcd_version << " on " << info.subnet << " (bridge "
              << info.bridge << ")"
              << (info.agent.empty() ? ", no agents" : ", one agent per member") << "\n"
              << EtcdLine(info) << "\n"
              << "endpoints " << info.Endpoints() << "\n";
    if (!info.controller.binary.empty()) {
      std::cout << "controller " << info.controller.Address() << " (metrics http://"
                << info.controller.metrics_listen << "/metrics)\n";
    }
    std::cout << "try: etcdctl --endpoints $(faultline lab endpoints --name " << info.name
              << ") endpoint status -w table\n";
    if (!info.controller.binary.empty()) {
      std::cout << "     faultline submit FILE --lab " << info.name << "; faultline runs --lab "
                << info.name << "; faultline schedule list --lab " << info.name << "\n";
    }
  });
}

void AddLabDown(CLI::App* lab) {
  auto down_flags = std::make_shared<LabFlags>();
  auto* down = lab->add_subcommand("down", "remove everything a lab created (safe to repeat)");
  AddCommon(down, *down_flags);
  down->callback([down_flags] {
    std::string name;
    if (down_flags->name) {
      name = *down_flags->name;
    } else {
      auto labs = lab::ListLabs(down_flags->root);
      if (labs.empty()) {
        std::cout << "no lab is up\n";
        return;
      }
      name = lab::ResolveLabName(std::nullopt, down_flags->root);
    }
    auto done = lab::Down(name, down_flags->root);
    for (const auto& line : done) std::cerr << "lab: " << line << "\n";
    std::cout << (done.empty() ? "lab " + name + ": nothing left to remove"
                               : "lab " + name + " is down")
              << "\n";
  });
}

void AddLabEndpoints(CLI::App* lab) {
  auto ep_flags = std::make_shared<LabFlags>();
  auto* endpoints = lab->add_subcommand("endpoints", "print the client URLs, comma separated");
  AddCommon(endpoints, *ep_flags);
  endpoints->callback([ep_flags] {
    auto info = lab::LoadLab(lab::ResolveLabName(ep_flags->name, ep_flags->root), ep_flags->root);
    std::cout << info.Endpoints() << "\n";
  });
}

// What `lab status` prints: members (etcd's own status and each agent's health) and the
// controller.
struct LabStatusView {
  const lab::LabInfo& info;
  const std::vector<lab::EtcdStatus>& etcd;
  const std::vector<std::string>& agents;
  const std::string& leader_name;
  const ControllerHealth& ctl;
};

void PrintLabStatusJson(const LabStatusView& v) {
  const auto& [info, etcd, agents, leader_name, ctl] = v;
  json members = json::array();
  for (size_t i = 0; i < etcd.size(); ++i) {
    const auto& s = etcd[i];
    const auto& m = info.members[i];
    members.push_back({{"name", m.name},
                       {"endpoint", m.client_url},
                       {"netns", m.netns},
                       {"reachable", s.reachable},
                       {"error", s.error},
                       {"leader", s.is_leader()},
                       {"member_id", Hex(s.member_id)},
                       {"revision", s.revision},
                       {"raft_index", s.raft_index},
                       {"raft_applied_index", s.raft_applied_index},
                       {"raft_term", s.raft_term},
                       {"version", s.version},
                       {"agent_socket", m.agent_socket},
                       {"agent", agents[i]}});
  }
  json controller = nullptr;
  if (!info.controller.binary.empty()) {
    controller = {{"address", info.controller.Address()},
                  {"pid", info.controller.pid},
                  {"metrics", "http://" + info.controller.metrics_listen + "/metrics"},
                  {"state", ctl.state},
                  {"schedules", ctl.schedules},
                  {"schedules_paused", ctl.paused},
                  {"runs", ctl.runs},
                  {"runs_active", ctl.runs_active}};
  }
  std::cout << json{{"name", info.name},
                    {"state", info.state},
                    {"etcd", info.etcd},
                    {"etcd_version", info.etcd_version},
                    {"etcd_flags", info.etcd_flags},
                    {"etcd_flags_dropped", info.etcd_flags_dropped},
                    {"leader", leader_name},
                    {"members", members},
                    {"controller", controller}}
                   .dump(2)
            << "\n";
}

void PrintLabStatusTable(const LabStatusView& v) {
  const auto& [info, etcd, agents, leader_name, ctl] = v;
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < etcd.size(); ++i) {
    const auto& s = etcd[i];
    const auto& m = info.members[i];
    if (!s.reachable) {
      rows.push_back(
          {m.name, m.client_url, "unreachable: " + s.error, "-", "-", "-", "-", agents[i]});
      continue;
    }
    rows.push_back({m.name, m.client_url, "ok " + s.version, s.is_leader() ? "*" : "",
                    std::to_string(s.revision), std::to_string(s.raft_index),
                    std::to_string(s.raft_term), agents[i]});
  }
  std::cout << "lab " << info.name << " (" << info.state << "), leader " << leader_name << "\n"
            << EtcdLine(info) << "\n"
            << Table({"MEMBER", "ENDPOINT", "ETCD", "LEADER", "REVISION", "RAFT-INDEX", "RAFT-TERM",
                      "AGENT"},
                     rows);
  if (info.controller.binary.empty()) {
    std::cout << "controller: none (the lab was started without one)\n";
  } else {
    std::cout << "controller: " << ctl.state << ", " << info.controller.Address() << ", pid "
              << info.controller.pid;
    if (ctl.state == "ok") {
      std::cout << ", " << ctl.schedules << " schedule(s) (" << ctl.paused << " paused), "
                << ctl.runs_active << " of " << ctl.runs << " run(s) active";
    }
    std::cout << ", metrics http://" << info.controller.metrics_listen << "/metrics\n";
  }
}

void AddLabStatus(CLI::App* lab, GlobalOptions& g) {
  auto st_flags = std::make_shared<LabFlags>();
  auto* status = lab->add_subcommand("status", "members, leader, revision, raft index, agents");
  AddCommon(status, *st_flags);
  status->callback([&g, st_flags] {
    auto info = lab::LoadLab(lab::ResolveLabName(st_flags->name, st_flags->root), st_flags->root);
    auto etcd = MemberStatuses(info);
    std::vector<std::string> agents;
    for (const auto& m : info.members) agents.push_back(AgentHealth(m, g));
    std::string leader_name = "none";
    for (size_t i = 0; i < etcd.size(); ++i) {
      if (etcd[i].is_leader()) leader_name = etcd[i].member;
    }
    ControllerHealth ctl = LabControllerHealth(info.controller);
    const LabStatusView view{info, etcd, agents, leader_name, ctl};
    if (g.format() == Format::kJson) {
      PrintLabStatusJson(view);
    } else {
      PrintLabStatusTable(view);
    }
  });
}

// `faultline check liveness`, when the check command exists: did etcd exit or restart by itself?
void AddCheckLiveness(CLI::App& app, GlobalOptions& g,
                      const std::shared_ptr<std::optional<std::string>>& lab_name) {
  // Asks the agents that supervise it (--agents, or every member's agent of the lab).
  CLI::App* check = nullptr;
  try {
    check = app.get_subcommand("check");
  } catch (const CLI::OptionNotFound&) {
  }
  if (check != nullptr) {
    auto agents = std::make_shared<std::string>();
    auto process = std::make_shared<std::string>("etcd");
    auto* lv = check->add_subcommand(
        "liveness", "fail if a supervised etcd exited or restarted without a fault meaning it");
    lv->add_option("--agents", *agents,
                   "agent addresses A,B,... (default: every member's agent of the lab, --lab)");
    lv->add_option("--process", *process, "managed process to judge (\"\": all)")
        ->capture_default_str();
    lv->callback([&g, agents, process, lab_name] {
      std::vector<std::pair<std::string, std::string>> targets;  // member, address
      try {
        if (!agents->empty()) {
          for (const auto& a : verify::SplitEndpoints(*agents)) targets.push_back({a, a});
        } else {
          auto info = lab::LoadLab(lab::ResolveLabName(*lab_name));
          for (const auto& m : info.members) {
            if (!m.agent_socket.empty()) targets.push_back({m.name, "unix://" + m.agent_socket});
          }
        }
      } catch (const std::exception& e) {
        std::cerr << "faultline: error: " << e.what() << "\n";
        std::exit(kExitUsage);
      }
      std::vector<verify::SupervisedProcess> seen;
      for (const auto& [member, address] : targets) {
        AgentAddress a = g.agent;
        a.address = address;
        a.timeout = std::chrono::milliseconds(5000);
        v1::ProcessesResponse resp;
        grpc::Status st;
        try {
          auto stub = ConnectAgent(a);
          st = stub->Processes(Context(a).get(), {}, &resp);
        } catch (const std::exception& e) {
          st = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
        }
        if (!st.ok()) {
          seen.push_back(verify::AgentNotAnswering(member, st.error_message()));
          continue;
        }
        for (auto& p : verify::FromAgent(resp, member)) seen.push_back(std::move(p));
      }
      std::vector<verify::CheckResult> rs = {verify::CheckLiveness(seen, {0, *process})};
      if (g.format() == Format::kJson) {
        std::cout << verify::ToJson(rs).dump(2) << "\n";
      } else {
        std::cout << verify::RenderTable(rs);
      }
      std::cout.flush();
      if (!verify::AllPassed(rs)) std::exit(kExitFailed);
    });
  }
}

// Global --lab/--target: address a lab member's agent from any agent command.
void AddLabTargeting(CLI::App& app, GlobalOptions& g,
                     const std::shared_ptr<std::optional<std::string>>& lab_name) {
  auto target = std::make_shared<std::optional<std::string>>();
  app.add_option("--lab", *lab_name, "lab whose member agent to talk to (see --target)");
  app.add_option("--target", *target, "lab member (e1, e2, ...) whose agent to talk to");
  // Agent commands are written `faultline inject ... --lab x --target e1`, and `-o json` is
  // natural at the end of any command: let options a subcommand does not know fall through
  // to the global ones.
  std::function<void(CLI::App*)> fall = [&](CLI::App* a) {
    for (CLI::App* s : a->get_subcommands([](CLI::App*) { return true; })) {
      s->fallthrough();
      fall(s);
    }
  };
  fall(&app);
  auto previous = g.resolve_agent;
  g.resolve_agent = [lab_name, target, previous](GlobalOptions& opts) {
    if (previous) previous(opts);
    if (!*lab_name && !*target) return;
    auto info = lab::LoadLab(lab::ResolveLabName(*lab_name));
    if (!*target) {
      throw std::invalid_argument("--lab " + info.name + ": say which member with --target (" +
                                  info.members.front().name + ".." + info.members.back().name +
                                  ")");
    }
    const lab::MemberInfo* m = info.Member(**target);
    if (m == nullptr) {
      throw std::invalid_argument("--target " + **target + ": lab " + info.name + " has members " +
                                  info.members.front().name + ".." + info.members.back().name);
    }
    if (m->agent_socket.empty()) {
      throw std::invalid_argument("--target " + **target + ": lab " + info.name +
                                  " runs without agents");
    }
    opts.agent.address = "unix://" + m->agent_socket;
  };
}

}  // namespace

void AddLabCommand(CLI::App& app, GlobalOptions& g) {
  auto* lab = app.add_subcommand("lab", "a local etcd cluster in network namespaces");
  lab->require_subcommand(1);
  AddLabUp(lab, g);
  AddLabDown(lab);
  AddLabEndpoints(lab);
  AddLabStatus(lab, g);
  auto lab_name = std::make_shared<std::optional<std::string>>();
  AddCheckLiveness(app, g, lab_name);
  // Last: it lets the options of every subcommand added so far fall through to the global ones.
  AddLabTargeting(app, g, lab_name);
}

}  // namespace faultline::cli
