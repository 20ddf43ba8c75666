#include "faults/process/target.h"

#include <filesystem>
#include <optional>
#include <regex>

#include "faults/core/rng.h"
#include "faults/process/proc.h"
#include "faults/process/spec.h"

namespace faultline::faults::process {
namespace {

// systemd puts a unit's processes in a cgroup named after it; search the usual slices.
std::string UnitCgroup(const std::string& unit) {
  for (const char* slice : {"system.slice", "user.slice", "machine.slice", ""}) {
    std::string rel = std::string(slice) + (*slice ? "/" : "") + unit;
    std::error_code ec;
    if (std::filesystem::is_directory("/sys/fs/cgroup/" + rel, ec)) return rel;
  }
  return "";
}

}  // namespace

std::vector<Target> ResolveTargets(const v1::ProcessTarget& t, uint64_t seed,
                                   const FaultContext& ctx, const std::string& field,
                                   bool allow_stopped_managed) {
  std::vector<pid_t> candidates;
  switch (t.selector_case()) {
    case v1::ProcessTarget::kPid:
      candidates.push_back(t.pid());
      break;
    case v1::ProcessTarget::kManaged: {
      if (ctx.supervisor == nullptr) {
        throw FaultError(field + ".managed: this agent manages no processes");
      }
      int pid = ctx.supervisor->Pid(t.managed());
      if (pid <= 0 && !allow_stopped_managed) {
        throw FaultError(field + ".managed: managed process \"" + t.managed() +
                         "\" is not running");
      }
      if (pid > 0) candidates.push_back(pid);
      break;
    }
    case v1::ProcessTarget::kCgroup:
      candidates = CgroupPids(t.cgroup());
      break;
    case v1::ProcessTarget::kSystemdUnit: {
      std::string cg = UnitCgroup(t.systemd_unit());
      if (cg.empty()) {
        throw FaultError(field + ".systemd_unit: no cgroup found for unit \"" + t.systemd_unit() +
                         "\"");
      }
      candidates = CgroupPids(cg);
      break;
    }
    default:
      candidates = ListPids();
      break;
  }
  std::optional<std::regex> re;
  if (t.selector_case() == v1::ProcessTarget::kCmdline) re.emplace(t.cmdline());
  std::vector<Target> targets;
  for (pid_t pid : candidates) {
    if (pid == ctx.agent_pid || pid == 1) continue;
    auto info = ReadProc(pid);
    if (!info || info->state == 'Z') continue;
    if (t.selector_case() == v1::ProcessTarget::kName && info->comm != t.name()) continue;
    if (re && !std::regex_search(info->cmdline, *re)) continue;
    // Kernel threads have an empty cmdline; never act on them by pattern.
    if (t.selector_case() != v1::ProcessTarget::kPid && info->cmdline.empty()) continue;
    targets.push_back({pid, info->start_time, info->comm});
  }
  if (targets.empty()) {
    if (t.selector_case() == v1::ProcessTarget::kPid) {
      if (t.pid() == ctx.agent_pid) {
        throw FaultError(field + ".pid: refusing to target the agent itself");
      }
      if (t.pid() == 1) throw FaultError(field + ".pid: refusing to target pid 1");
      throw FaultError(field + ".pid: no process with pid " + std::to_string(t.pid()));
    }
    if (allow_stopped_managed && t.selector_case() == v1::ProcessTarget::kManaged) return {};
    throw FaultError(field + ": no process matches " + SelectorText(t));
  }
  if (t.mode() == v1::ProcessTarget::ONE && targets.size() > 1) {
    Rng rng = Rng(seed).Fork("process.target");
    Target pick = targets[rng.Below(targets.size())];
    targets = {pick};
  }
  return targets;
}

}  // namespace faultline::faults::process
