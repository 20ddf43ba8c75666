#include "cli/inject_command.h"
#include "cli/inject_families.h"
#include "faults/core/duration.h"

namespace faultline::cli {
namespace {

struct SyscallFlags {
  std::string managed, error, delay;
  std::vector<std::string> syscalls;
  double percent = 0;
  uint64_t max_count = 0;
};

}  // namespace

void AddInjectSyscall(CLI::App* inject, GlobalOptions& g) {
  auto* cmd = inject->add_subcommand(
      "syscall",
      "make chosen syscalls of a managed process fail or stall (seccomp user notification)");
  auto common = std::make_shared<InjectCommon>();
  auto f = std::make_shared<SyscallFlags>();
  cmd->add_option("--managed", f->managed, "managed process name, e.g. etcd")->required();
  cmd->add_option("--syscalls", f->syscalls, "syscall names, e.g. fdatasync,fsync")
      ->delimiter(',')
      ->required();
  cmd->add_option("--errno", f->error, "fail with this errno (EIO, ENOSPC, or a number)");
  cmd->add_option("--delay", f->delay, "stall each affected call this long (e.g. 200ms)");
  cmd->add_option("--percent", f->percent, "share of matching calls affected (default 100)");
  cmd->add_option("--max-count", f->max_count, "affect at most this many calls");
  common->AddFlags(cmd);
  cmd->callback([&g, common, f] {
    v1::FaultSpec spec;
    auto* s = spec.mutable_syscall();
    s->set_managed(f->managed);
    for (const auto& name : f->syscalls) s->add_syscalls(name);
    s->set_error(f->error);
    if (!f->delay.empty()) faults::ToProto(DurationFlag("--delay", f->delay), s->mutable_delay());
    s->set_percent(f->percent);
    s->set_max_count(f->max_count);
    common->Submit(g, spec);
  });
}

}  // namespace faultline::cli
