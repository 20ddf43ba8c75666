#include "cli/inject_command.h"
#include "faults/core/duration.h"
#include "faults/process/spec.h"

namespace faultline::cli {
namespace {

struct ProcessFlags {
  ProcessTargetFlags target;
  std::string signal, grace, restart_after;
  std::vector<std::string> start_args;
};

void AddAction(CLI::App* family, GlobalOptions& g, v1::ProcessFault::Action kind,
               const std::string& help) {
  auto* cmd = family->add_subcommand(faults::process::ActionName(kind), help);
  auto common_ptr = std::make_shared<InjectCommon>();
  auto flags_ptr = std::make_shared<ProcessFlags>();
  flags_ptr->target.AddFlags(cmd);
  if (kind != v1::ProcessFault::PAUSE) {
    cmd->add_option("--signal", flags_ptr->signal, "signal name or number (TERM, SIGKILL, 9)");
  }
  if (kind == v1::ProcessFault::RESTART || kind == v1::ProcessFault::REJOIN) {
    cmd->add_option("--grace", flags_ptr->grace,
                    "wait this long for exit before SIGKILL (default 10s)");
  }
  if (kind == v1::ProcessFault::KILL) {
    cmd->add_option("--restart-after", flags_ptr->restart_after,
                    "managed processes: start again after this long");
  }
  if (kind == v1::ProcessFault::REJOIN) {
    cmd->add_option("--start-arg", flags_ptr->start_args,
                    "added to etcd's argv when it starts again, e.g. "
                    "--start-arg=--initial-cluster-state=existing (repeat for more)")
        ->allow_extra_args(false);
  }
  common_ptr->AddFlags(cmd);
  cmd->callback([&g, common_ptr, flags_ptr, kind, cmd] {
    InjectCommon& common = *common_ptr;
    ProcessFlags& f = *flags_ptr;
    v1::FaultSpec spec;
    auto* p = spec.mutable_process();
    p->set_action(kind);
    f.target.Fill(cmd, p->mutable_target());
    if (!f.signal.empty()) {
      int sig = ParseSignal(f.signal);
      // Unknown names go through as an out-of-range number so the agent names the field.
      p->set_signal(sig == 0 && f.signal != "0" ? -1 : sig);
    }
    for (const auto& a : f.start_args) p->add_start_args(a);
    if (!f.grace.empty()) faults::ToProto(DurationFlag("--grace", f.grace), p->mutable_grace());
    if (!f.restart_after.empty()) {
      auto d = DurationFlag("--restart-after", f.restart_after);
      faults::ToProto(d, p->mutable_restart_after());
    }
    common.Submit(g, spec);
  });
}

}  // namespace

void ProcessTargetFlags::AddFlags(CLI::App* cmd) {
  auto* target = cmd->add_option_group("target", "which processes");
  target->add_option("--pid", pid, "process id");
  target->add_option("--name", name, "exact process name (as in ps -o comm)");
  target->add_option("--cmdline", cmdline, "regular expression searched in the command line");
  target->add_option("--cgroup", cgroup, "cgroup v2 path under /sys/fs/cgroup");
  target->add_option("--unit", unit, "systemd unit, e.g. etcd.service");
  target->add_option("--managed", managed, "a process the agent manages, e.g. etcd");
  target->require_option(1);
  cmd->add_flag("--one", one, "act on one matching process (picked by the seed), not all");
}

void ProcessTargetFlags::Fill(const CLI::App* cmd, v1::ProcessTarget* t) const {
  if (cmd->count("--pid")) t->set_pid(pid);
  if (!name.empty()) t->set_name(name);
  if (!cmdline.empty()) t->set_cmdline(cmdline);
  if (!cgroup.empty()) t->set_cgroup(cgroup);
  if (!unit.empty()) t->set_systemd_unit(unit);
  if (!managed.empty()) t->set_managed(managed);
  t->set_mode(one ? v1::ProcessTarget::ONE : v1::ProcessTarget::ALL);
}

void AddInjectProcess(CLI::App* inject, GlobalOptions& g) {
  auto* family = inject->add_subcommand("process", "signal, kill, pause or restart processes");
  family->require_subcommand(1);
  AddAction(family, g, v1::ProcessFault::SIGNAL, "send a signal once");
  AddAction(family, g, v1::ProcessFault::KILL, "kill (SIGKILL unless --signal)");
  AddAction(family, g, v1::ProcessFault::PAUSE, "SIGSTOP now, SIGCONT when the fault ends");
  AddAction(family, g, v1::ProcessFault::RESTART,
            "restart a managed process and report its time to ready");
  AddAction(family, g, v1::ProcessFault::REJOIN,
            "managed etcd: stop it, empty its data dir, start it with --start-arg when the fault "
            "ends (remove and add the member meanwhile; experiment steps do both for you)");
}

}  // namespace faultline::cli
