#include "cli/agent_commands.h"

#include <iostream>
#include <memory>

#include "cli/inject_command.h"
#include "faults/core/duration.h"
#include "faults/io/spec.h"

namespace faultline::cli {
namespace {

void PrintFaults(const GlobalOptions& g,
                 const google::protobuf::RepeatedPtrField<v1::FaultStatus>& fs,
                 const google::protobuf::Message& whole, const std::string& empty) {
  if (g.format() == Format::kJson) {
    std::cout << ToJson(whole) << "\n";
    return;
  }
  if (fs.empty()) {
    std::cout << empty << "\n";
    return;
  }
  std::cout << FaultTable({fs.begin(), fs.end()});
}

}  // namespace

void AddAgentCommands(CLI::App& app, GlobalOptions& g) {
  auto* status = app.add_subcommand("status", "show an agent's capabilities and active faults");
  auto all = std::make_shared<bool>(false);
  status->add_flag("--all", *all, "also list faults that ended recently");
  status->callback([&g, all] {
    g.Resolve();
    auto stub = ConnectAgent(g.agent);
    v1::CapabilitiesResponse caps;
    Check(stub->Capabilities(Context(g.agent).get(), {}, &caps), g.agent.address);
    v1::ListRequest lreq;
    lreq.set_include_ended(*all);
    v1::ListResponse list;
    Check(stub->List(Context(g.agent).get(), lreq, &list), g.agent.address);
    if (g.format() == Format::kJson) {
      std::cout << "{\"capabilities\": " << ToJson(caps) << ",\n\"faults\": " << ToJson(list)
                << "}\n";
      return;
    }
    std::string labels;
    for (const auto& [k, v] : caps.labels()) labels += (labels.empty() ? "" : ",") + k + "=" + v;
    std::cout << "agent    " << g.agent.address << " (" << caps.hostname() << ", v"
              << caps.agent_version() << ")\n";
    if (!labels.empty()) std::cout << "labels   " << labels << "\n";
    std::string fams;
    for (const auto& f : caps.families()) fams += (fams.empty() ? "" : " ") + f;
    std::cout << "families " << fams << "\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : caps.capabilities()) {
      if (c.name().find('.') == std::string::npos) continue;  // families are listed above
      rows.push_back({c.name(), c.available() ? "yes" : "no", c.detail()});
    }
    if (!rows.empty()) std::cout << "\n" << Table({"CAPABILITY", "AVAILABLE", "DETAIL"}, rows);
    std::cout << "\n";
    PrintFaults(g, list.faults(), list, "no active faults");
  });

  auto* recover = app.add_subcommand("recover", "revert faults now");
  auto id = std::make_shared<std::string>();
  auto every = std::make_shared<bool>(false);
  auto experiment = std::make_shared<std::string>();
  auto* which = recover->add_option_group("which");
  which->add_option("id", *id, "fault id (from inject or status)");
  which->add_flag("--all", *every, "every active fault on the agent");
  which->add_option("--experiment", *experiment, "every fault of this experiment");
  which->require_option(1);
  recover->callback([&g, id, every, experiment] {
    v1::RecoverRequest req;
    if (*every) {
      req.set_all(true);
    } else if (!experiment->empty()) {
      req.set_experiment_id(*experiment);
    } else {
      req.set_fault_id(*id);
    }
    g.Resolve();
    auto stub = ConnectAgent(g.agent);
    v1::RecoverResponse resp;
    Check(stub->Recover(Context(g.agent).get(), req, &resp), g.agent.address);
    PrintFaults(g, resp.faults(), resp, "nothing to recover");
  });

  auto* overlay = app.add_subcommand("overlay", "FUSE overlays that IO faults act through");
  overlay->require_subcommand(1);
  for (const std::string verb : {"mount", "unmount", "list"}) {
    auto* cmd = overlay->add_subcommand(
        verb, verb == "mount"     ? "cover DIR with an overlay (start the process using it after)"
              : verb == "unmount" ? "remove the overlay from DIR"
                                  : "list the agent's overlays");
    auto dir = std::make_shared<std::string>();
    if (verb != "list") cmd->add_option("dir", *dir, "absolute directory")->required();
    cmd->callback([&g, dir, verb] {
      g.Resolve();
      auto stub = ConnectAgent(g.agent);
      v1::OverlayRequest req;
      req.set_dir(*dir);
      v1::OverlayResponse resp;
      auto ctx = Context(g.agent);
      grpc::Status st = verb == "mount"     ? stub->MountOverlay(ctx.get(), req, &resp)
                        : verb == "unmount" ? stub->UnmountOverlay(ctx.get(), req, &resp)
                                            : stub->ListOverlays(ctx.get(), {}, &resp);
      Check(st, g.agent.address);
      if (g.format() == Format::kJson) {
        std::cout << ToJson(resp) << "\n";
        return;
      }
      for (const auto& o : resp.overlays()) {
        std::cout << o.dir() << "  overlay process pid " << o.pid()
                  << (o.attached() ? " (found running)" : "") << ", " << o.rules_size()
                  << " rule(s), " << o.leases_lapsed() << " ended by their lease"
                  << (o.error().empty() ? "" : ", error: " + o.error()) << "\n";
        for (const auto& r : o.rules()) {
          std::cout << "  rule " << r.id() << ": " << faults::io::ActionName(r.spec().io().action())
                    << " " << (r.spec().io().path().empty() ? "**" : r.spec().io().path())
                    << ", matched " << r.matched() << ", acted " << r.acted() << ", lease left "
                    << faults::FormatDuration(faults::FromProto(r.lease_left())) << "\n";
        }
      }
      if (resp.mounts().empty()) std::cout << "no overlays\n";
    });
  }

  auto* renew = app.add_subcommand("renew", "extend the lease of active faults");
  auto ids = std::make_shared<std::vector<std::string>>();
  auto lease = std::make_shared<std::string>();
  renew->add_option("ids", *ids, "fault ids")->required();
  renew->add_option("--lease", *lease, "new lease from now (e.g. 2m)")->required();
  renew->callback([&g, ids, lease] {
    v1::RenewRequest req;
    for (const auto& i : *ids) req.add_fault_ids(i);
    faults::ToProto(DurationFlag("--lease", *lease), req.mutable_lease());
    g.Resolve();
    auto stub = ConnectAgent(g.agent);
    v1::RenewResponse resp;
    Check(stub->Renew(Context(g.agent).get(), req, &resp), g.agent.address);
    PrintFaults(g, resp.faults(), resp, "nothing renewed");
  });
}

}  // namespace faultline::cli
