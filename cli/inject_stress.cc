#include "cli/inject_command.h"
#include "cli/inject_families.h"
#include "faults/stress/size.h"
#include "faults/stress/spec.h"

namespace faultline::cli {
namespace {

struct StressFlags {
  uint32_t workers = 0;
  uint32_t load = 0;
  std::vector<uint32_t> cpus;
  std::string size, growth, floor;
  bool mlock = false, force = false;
  int oom_score_adj = 0;
};

// "512MiB" -> bytes; "25%" only where `percent_ok`. Throws CLI::ValidationError naming the flag.
faults::stress::MemorySize SizeFlag(const std::string& flag, const std::string& value,
                                    bool percent_ok) {
  std::string why;
  auto s = faults::stress::ParseSize(value, &why);
  if (!s) throw CLI::ValidationError(flag, "\"" + value + "\": " + why);
  if (s->percent > 0 && !percent_ok) {
    throw CLI::ValidationError(flag, "\"" + value + "\": give a size in bytes, not a percent");
  }
  return *s;
}

}  // namespace

void AddInjectStress(CLI::App* inject, GlobalOptions& g) {
  auto* family = inject->add_subcommand(
      "stress", "CPU or memory stress in worker processes inside a faultline cgroup");
  family->require_subcommand(1);

  {
    auto* cmd = family->add_subcommand(faults::stress::ActionName(v1::StressFault::CPU),
                                       "keep N workers busy at L% of a CPU each");
    auto common = std::make_shared<InjectCommon>();
    auto f = std::make_shared<StressFlags>();
    cmd->add_option("--workers", f->workers, "worker processes (default 1, at most 4 x CPUs)");
    cmd->add_option("--load", f->load, "percent of one CPU per worker, 1..100")->required();
    cmd->add_option("--cpus", f->cpus, "pin workers to these CPUs, round robin (e.g. 0,1)")
        ->delimiter(',');
    cmd->add_option("--oom-score-adj", f->oom_score_adj, "workers' oom_score_adj (default 1000)");
    common->AddFlags(cmd);
    cmd->callback([&g, common, f, cmd] {
      v1::FaultSpec spec;
      auto* s = spec.mutable_stress();
      s->set_action(v1::StressFault::CPU);
      s->set_workers(f->workers);
      s->set_load(f->load);
      for (auto c : f->cpus) s->add_cpus(c);
      if (cmd->count("--oom-score-adj")) s->set_oom_score_adj(f->oom_score_adj);
      common->Submit(g, spec);
    });
  }
  {
    auto* cmd = family->add_subcommand(faults::stress::ActionName(v1::StressFault::MEMORY),
                                       "hold SIZE of touched anonymous memory");
    auto common = std::make_shared<InjectCommon>();
    auto f = std::make_shared<StressFlags>();
    cmd->add_option("--size", f->size, "bytes (512MiB, 2GiB, 100MB) or percent of RAM (25%)")
        ->required();
    cmd->add_option("--workers", f->workers, "split the size over this many workers (default 1)");
    cmd->add_option("--growth", f->growth,
                    "touch at this many bytes per second (e.g. 64MiB); default all at once");
    cmd->add_flag("--mlock", f->mlock, "lock the memory so it cannot be swapped out");
    cmd->add_option("--oom-score-adj", f->oom_score_adj, "workers' oom_score_adj (default 1000)");
    cmd->add_option("--floor", f->floor,
                    "MemAvailable that must remain (default 5% of RAM, at least 256MiB)");
    cmd->add_flag("--force", f->force, "skip the safety floor check");
    common->AddFlags(cmd);
    cmd->callback([&g, common, f, cmd] {
      v1::FaultSpec spec;
      auto* s = spec.mutable_stress();
      s->set_action(v1::StressFault::MEMORY);
      s->set_workers(f->workers);
      auto size = SizeFlag("--size", f->size, true);
      if (size.percent > 0) {
        s->set_size_percent(size.percent);
      } else {
        s->set_size_bytes(size.bytes);
      }
      if (!f->growth.empty()) {
        s->set_growth_bytes_per_second(SizeFlag("--growth", f->growth, false).bytes);
      }
      if (!f->floor.empty()) s->set_floor_bytes(SizeFlag("--floor", f->floor, false).bytes);
      s->set_mlock(f->mlock);
      s->set_force(f->force);
      if (cmd->count("--oom-score-adj")) s->set_oom_score_adj(f->oom_score_adj);
      common->Submit(g, spec);
    });
  }
}

}  // namespace faultline::cli
