#include <algorithm>

#include "cli/inject_command.h"
#include "cli/inject_families.h"
#include "faults/core/duration.h"

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
      "offset", "every clock read returns the real time plus --offset (negative: back)");
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
      std::transform(c.begin(), c.end(), c.begin(), ::toupper);
      if (c.starts_with("CLOCK_")) c = c.substr(6);
      v1::TimeFault::Clock clock;
      if (!v1::TimeFault::Clock_Parse(c, &clock) || clock == v1::TimeFault::CLOCK_UNSPECIFIED) {
        throw CLI::ValidationError("--clocks", "\"" + c + "\": use realtime, monotonic, boottime");
      }
      t->add_clocks(clock);
    }
    common->Submit(g, spec);
  });
}

}  // namespace faultline::cli
