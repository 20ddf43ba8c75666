#include "faults/process/spec.h"

#include <regex>

#include "faults/core/duration.h"
#include "faults/core/names.h"

namespace faultline::faults::process {

using v1::ProcessFault;

std::string ActionName(ProcessFault::Action a) { return NameOf(a); }

bool OneShot(const ProcessFault& f) {
  switch (f.action()) {
    case ProcessFault::SIGNAL:
    case ProcessFault::RESTART:
      return true;
    case ProcessFault::KILL:
      // A kill with automatic restart stays active until the restart (its revert) is due.
      return FromProto(f.restart_after()).count() <= 0;
    default:
      return false;
  }
}

FieldErrors ValidateSpec(const v1::FaultSpec& spec) {
  FieldErrors e;
  const auto& f = spec.process();
  if (f.action() == ProcessFault::ACTION_UNSPECIFIED || !ProcessFault::Action_IsValid(f.action())) {
    e.push_back({"process.action", "required: one of " + Choices<ProcessFault::Action>()});
  }
  const auto& t = f.target();
  ValidateTarget(t, "process.target", e);
  bool signal_required = f.action() == ProcessFault::SIGNAL;
  if (f.signal() != 0 || signal_required) {
    if (f.signal() < 1 || f.signal() > 64) {
      e.push_back({"process.signal", "must be a signal number between 1 and 64 (got " +
                                         std::to_string(f.signal()) + ")"});
    }
  }
  if (f.action() == ProcessFault::PAUSE && f.signal() != 0) {
    e.push_back({"process.signal", "pause always uses SIGSTOP/SIGCONT; leave signal unset"});
  }
  if (FromProto(f.grace()).count() < 0) e.push_back({"process.grace", "must not be negative"});
  if (FromProto(f.restart_after()).count() < 0) {
    e.push_back({"process.restart_after", "must not be negative"});
  }
  if (FromProto(f.restart_after()).count() > 0 && !t.has_managed()) {
    e.push_back({"process.restart_after", "automatic restart needs a managed target"});
  }
  if (f.action() == ProcessFault::RESTART && !t.has_managed()) {
    e.push_back({"process.target", "restart needs a managed process (target.managed)"});
  }
  if (f.action() == ProcessFault::REJOIN) {
    if (!t.has_managed()) {
      e.push_back({"process.target", "rejoin needs a managed etcd (target.managed)"});
    }
    if (FromProto(f.restart_after()).count() > 0) {
      e.push_back({"process.restart_after",
                   "rejoin starts the member when the fault ends; leave restart_after unset"});
    }
  } else if (f.start_args_size() > 0) {
    e.push_back({"process.start_args", "only rejoin starts a process with added arguments"});
  }
  for (int i = 0; i < f.start_args_size(); ++i) {
    if (f.start_args(i).empty()) {
      e.push_back({"process.start_args[" + std::to_string(i) + "]", "must not be empty"});
    }
  }
  return e;
}

void ValidateTarget(const v1::ProcessTarget& t, const std::string& field, FieldErrors& e) {
  switch (t.selector_case()) {
    case v1::ProcessTarget::SELECTOR_NOT_SET:
      e.push_back({field, "required: one of pid, name, cmdline, cgroup, systemd_unit, managed"});
      break;
    case v1::ProcessTarget::kPid:
      if (t.pid() <= 0) e.push_back({field + ".pid", "must be a positive pid"});
      break;
    case v1::ProcessTarget::kName:
      if (t.name().empty()) e.push_back({field + ".name", "must not be empty"});
      if (t.name().size() > 15) {
        e.push_back({field + ".name",
                     "longer than 15 characters, the kernel's comm limit; use cmdline instead"});
      }
      break;
    case v1::ProcessTarget::kCmdline:
      if (t.cmdline().empty()) e.push_back({field + ".cmdline", "must not be empty"});
      try {
        std::regex re(t.cmdline());
      } catch (const std::regex_error& err) {
        e.push_back({field + ".cmdline", std::string("bad regular expression: ") + err.what()});
      }
      break;
    case v1::ProcessTarget::kCgroup:
      if (t.cgroup().empty() || t.cgroup().find("..") != std::string::npos) {
        e.push_back({field + ".cgroup", "must be a path under /sys/fs/cgroup without \"..\""});
      }
      break;
    case v1::ProcessTarget::kSystemdUnit:
      if (t.systemd_unit().empty() || t.systemd_unit().find('/') != std::string::npos) {
        e.push_back({field + ".systemd_unit", "must be a unit name like etcd.service"});
      }
      break;
    case v1::ProcessTarget::kManaged:
      if (t.managed().empty()) e.push_back({field + ".managed", "must not be empty"});
      break;
  }
  if (!v1::ProcessTarget::Mode_IsValid(t.mode())) {
    e.push_back({field + ".mode", "must be all or one"});
  }
}

std::string SelectorText(const v1::ProcessTarget& t) {
  switch (t.selector_case()) {
    case v1::ProcessTarget::kPid:
      return "pid " + std::to_string(t.pid());
    case v1::ProcessTarget::kName:
      return "name \"" + t.name() + "\"";
    case v1::ProcessTarget::kCmdline:
      return "cmdline /" + t.cmdline() + "/";
    case v1::ProcessTarget::kCgroup:
      return "cgroup " + t.cgroup();
    case v1::ProcessTarget::kSystemdUnit:
      return "unit " + t.systemd_unit();
    case v1::ProcessTarget::kManaged:
      return "managed process " + t.managed();
    default:
      return "no target";
  }
}

}  // namespace faultline::faults::process
