#include "faults/stress/spec.h"

#include "faults/core/names.h"

namespace faultline::faults::stress {

using v1::StressFault;

std::string ActionName(StressFault::Action a) { return NameOf(a); }

FieldErrors ValidateSpec(const v1::FaultSpec& spec) {
  FieldErrors e;
  const auto& f = spec.stress();
  const bool cpu = f.action() == StressFault::CPU;
  const bool mem = f.action() == StressFault::MEMORY;
  if (!cpu && !mem) e.push_back({"stress.action", "required: " + Choices<StressFault::Action>()});
  if (f.has_oom_score_adj() && (f.oom_score_adj() < -1000 || f.oom_score_adj() > 1000)) {
    e.push_back({"stress.oom_score_adj", "must be between -1000 and 1000"});
  }
  if (cpu) {
    if (f.load() < 1 || f.load() > 100) {
      e.push_back({"stress.load",
                   "percent of one CPU per worker, 1..100 (got " + std::to_string(f.load()) + ")"});
    }
    if (f.size_case() != StressFault::SIZE_NOT_SET) {
      e.push_back({"stress.size", "only for memory stress"});
    }
  }
  if (mem) {
    if (f.load() != 0) e.push_back({"stress.load", "only for cpu stress"});
    if (f.cpus_size() != 0) e.push_back({"stress.cpus", "only for cpu stress"});
    switch (f.size_case()) {
      case StressFault::SIZE_NOT_SET:
        e.push_back({"stress.size", "required: bytes or percent of RAM"});
        break;
      case StressFault::kSizeBytes:
        if (f.size_bytes() == 0) e.push_back({"stress.size_bytes", "must be more than 0"});
        break;
      case StressFault::kSizePercent:
        if (!(f.size_percent() > 0 && f.size_percent() <= 100)) {
          e.push_back({"stress.size_percent", "must be in (0, 100]"});
        }
        break;
    }
  }
  return e;
}

}  // namespace faultline::faults::stress
