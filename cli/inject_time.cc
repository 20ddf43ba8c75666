#include <strings.h>

#include "cli/inject_command.h"
#include "cli/inject_families.h"
#include "faults/core/duration.h"
#include "faults/core/names.h"

namespace faultline::cli {
namespace {

struct TimeFlags {
  ProcessTargetFlags target;
  std::string offset;
  std::vector<std::string> clocks;
};

}  // namespace

void AddInjectTime(CLI::App* inject, GlobalOptions& g) {
  auto* family = inject->add_subcommand(
      "time", "move chosen processes' clocks (their vDSO), never the host's clock");
  family->require_subcommand(1);
  auto* cmd = family->add_subcommand(
      faults::NameOf(v1::TimeFault::OFFSET),
      "every clock read returns the real time plus --offset (negative: back)");
  auto common = std::make_shared<InjectCommon>();
  auto f = std::make_shared<TimeFlags>();
  f->target.AddFlags(cmd);
  cmd->add_option("--offset", f->offset, "e.g. -60s, +5m, 1h30m")->required();
  cmd->add_option("--clocks", f->clocks, "realtime (default), monotonic, boottime")->delimiter(',');
  common->AddFlags(cmd);
  cmd->callback([&g, common, f, cmd] {
    v1::FaultSpec spec;
    auto* t = spec.mutable_time();
    t->set_action(v1::TimeFault::OFFSET);
    f->target.Fill(cmd, t->mutable_target());
    faults::ToProto(DurationFlag("--offset", f->offset), t->mutable_offset());
    for (std::string c : f->clocks) {
      // chaos-mesh and clock_gettime(2) spell them CLOCK_REALTIME, ...
      if (c.size() > 6 && ::strncasecmp(c.c_str(), "clock_", 6) == 0) c = c.substr(6);
      t->add_clocks(EnumFlag<v1::TimeFault::Clock>("--clocks", c));
    }
    common->Submit(g, spec);
  });
}

}  // namespace faultline::cli
