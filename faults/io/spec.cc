#include "faults/io/spec.h"

#include <sstream>

#include "faults/core/duration.h"
#include "faults/core/names.h"
#include "faults/io/glob.h"
#include "faults/io/rules.h"

namespace faultline::faults::io {
namespace {

using v1::IoFault;

std::string Number(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

// The crash model's fields: each only where its action reads it, so nothing is ignored.
void ValidateCrash(const IoFault& f, FieldErrors& e) {
  auto a = f.action();
  const auto& c = f.crash();
  bool counted = a == IoFault::CRASH_AT || a == IoFault::TORN_WRITE || a == IoFault::TORN_SEQUENCE;
  bool crashes = counted || a == IoFault::LOSE_UNSYNCED || a == IoFault::CRASH;
  std::string name = ActionName(a);
  if (a == IoFault::CRASH) {
    if (f.methods_size() > 0) e.push_back({"io.methods", "a crash acts on the whole mount"});
    if (!f.path().empty() && f.path() != "**")
      e.push_back({"io.path", "a crash acts on the whole mount"});
    if (f.max_count() != 0) e.push_back({"io.max_count", "a crash happens once"});
  }
  if (a == IoFault::LOSE_UNSYNCED || a == IoFault::CRASH) {
    if (f.has_percent() && f.percent() != 100) {
      e.push_back({"io.percent", name + " tracks every write of the matching files; use "
                                        "torn-sequence to keep only some"});
    }
    if (a == IoFault::LOSE_UNSYNCED && f.max_count() != 0) {
      e.push_back({"io.max_count", "lose-unsynced tracks every write of the matching files"});
    }
  }
  if (c.at_op() < 0) e.push_back({"io.crash.at_op", "must not be negative"});
  if (c.at_op() != 0 && !counted) {
    e.push_back({"io.crash.at_op", "only crash-at, torn-write and torn-sequence take it"});
  }
  if (c.after_op() && a != IoFault::CRASH_AT) {
    e.push_back({"io.crash.after_op", "only crash-at takes it"});
  }
  if (c.has_after()) {
    if (a != IoFault::LOSE_UNSYNCED) {
      e.push_back({"io.crash.after", "only lose-unsynced takes it"});
    } else if (FromProto(c.after()).count() <= 0) {
      e.push_back({"io.crash.after", "must be positive"});
    }
  }
  if (!c.restart().empty() && !crashes) {
    e.push_back({"io.crash.restart", "only a fault that crashes takes it"});
  }
  if (c.max_unsynced_bytes() != 0 && a != IoFault::LOSE_UNSYNCED && a != IoFault::TORN_SEQUENCE) {
    e.push_back({"io.crash.max_unsynced_bytes", "only lose-unsynced and torn-sequence take it"});
  }
  if (c.names() && a != IoFault::LOSE_UNSYNCED && a != IoFault::TORN_SEQUENCE) {
    e.push_back({"io.crash.names", "only lose-unsynced and torn-sequence take it"});
  }
  if ((c.tear_at_size() > 0 || c.parts() != 0) && a != IoFault::TORN_WRITE) {
    e.push_back(
        {c.parts() != 0 ? "io.crash.parts" : "io.crash.tear_at", "only torn-write takes it"});
  }
  if (c.tear_at_size() > 0 && c.parts() != 0) {
    e.push_back({"io.crash.parts", "set either tear_at or parts, not both"});
  }
  if (c.parts() == 1 || c.parts() > 4096) {
    e.push_back({"io.crash.parts", "must be in [2, 4096]"});
  }
  for (int i = 0; i < c.tear_at_size(); ++i) {
    if (c.tear_at(i) == 0 || (i > 0 && c.tear_at(i) <= c.tear_at(i - 1))) {
      e.push_back({"io.crash.tear_at[" + std::to_string(i) + "]",
                   "offsets must be positive and increasing"});
    }
  }
  if (c.keep_size() > 0 && a != IoFault::TORN_WRITE && a != IoFault::TORN_SEQUENCE) {
    e.push_back({"io.crash.keep", "only torn-write and torn-sequence take it"});
  }
  if (a == IoFault::TORN_WRITE) {
    uint32_t parts = c.tear_at_size() > 0 ? static_cast<uint32_t>(c.tear_at_size()) + 1
                                          : (c.parts() == 0 ? 2 : c.parts());
    for (int i = 0; i < c.keep_size(); ++i) {
      if (c.keep(i) >= parts) {
        e.push_back(
            {"io.crash.keep[" + std::to_string(i) + "]", "part " + std::to_string(c.keep(i)) +
                                                             " does not exist (the write splits "
                                                             "into " +
                                                             std::to_string(parts) + " parts)"});
      }
    }
  }
}

}  // namespace

std::string ActionName(IoFault::Action a) { return NameOf(a); }

FieldErrors ValidateSpec(const v1::FaultSpec& spec) {
  FieldErrors e;
  const IoFault& f = spec.io();
  auto action = f.action();
  if (action == IoFault::ACTION_UNSPECIFIED || !IoFault::Action_IsValid(action)) {
    e.push_back({"io.action", "required: one of " + Choices<IoFault::Action>()});
  }
  if (f.mount().empty()) {
    e.push_back({"io.mount", "required: the directory where a faultline overlay is mounted"});
  } else if (f.mount()[0] != '/') {
    e.push_back({"io.mount", "must be an absolute path (got \"" + f.mount() + "\")"});
  }
  if (auto why = GlobError(f.path()); !why.empty()) e.push_back({"io.path", why});
  MethodMask applicable =
      IoFault::Action_IsValid(action) && action != 0 ? ApplicableMethods(action) : ~MethodMask{0};
  for (int i = 0; i < f.methods_size(); ++i) {
    std::string field = "io.methods[" + std::to_string(i) + "]";
    auto m = ParseMethod(f.methods(i));
    if (!m) {
      e.push_back({field, "unknown FUSE method \"" + f.methods(i) + "\""});
    } else if ((*m & applicable) == 0) {
      e.push_back(
          {field, "\"" + f.methods(i) + "\" cannot carry a " + ActionName(action) + " fault"});
    }
  }
  if (f.has_percent() && !(f.percent() > 0 && f.percent() <= 100)) {
    e.push_back({"io.percent", "must be in (0, 100] (got " + Number(f.percent()) + ")"});
  }
  if (f.max_count() < 0) e.push_back({"io.max_count", "must not be negative"});

  auto delay = FromProto(f.delay());
  auto jitter = FromProto(f.jitter());
  bool latency = action == IoFault::LATENCY;
  if (latency && delay.count() <= 0) e.push_back({"io.delay", "required: a positive delay"});
  if (delay.count() < 0) e.push_back({"io.delay", "must not be negative"});
  if (delay > std::chrono::hours(1)) e.push_back({"io.delay", "longer than 1h"});
  if (jitter.count() < 0) e.push_back({"io.jitter", "must not be negative"});
  if (!IoFault::Distribution_IsValid(f.distribution())) {
    e.push_back({"io.distribution", "must be fixed, uniform or normal"});
  } else if (f.distribution() != IoFault::FIXED && jitter.count() == 0) {
    e.push_back({"io.jitter", "required by a uniform or normal distribution"});
  }
  if (!latency && (delay.count() > 0 || jitter.count() > 0)) {
    e.push_back({"io.delay", "only a latency fault takes a delay"});
  }

  if (action == IoFault::ERRNO && f.errnos_size() == 0) {
    e.push_back({"io.errnos", "required: at least one errno, e.g. EIO"});
  }
  if (action != IoFault::ERRNO && f.errnos_size() > 0) {
    e.push_back({"io.errnos", "only an errno fault takes errnos"});
  }
  for (int i = 0; i < f.errnos_size(); ++i) {
    if (!ParseErrno(f.errnos(i).name())) {
      e.push_back({"io.errnos[" + std::to_string(i) + "].name",
                   "unknown errno \"" + f.errnos(i).name() + "\" (use a name like EIO)"});
    }
  }

  bool is_short = action == IoFault::SHORT;
  if (is_short) {
    bool frac = f.short_fraction() != 0;
    bool bytes = f.short_bytes() != 0;
    if (frac == bytes) {
      e.push_back({"io.short_fraction", "set exactly one of short_fraction and short_bytes"});
    }
    if (frac && !(f.short_fraction() > 0 && f.short_fraction() < 1)) {
      e.push_back({"io.short_fraction", "must be in (0, 1)"});
    }
  } else if (f.short_fraction() != 0 || f.short_bytes() != 0) {
    e.push_back({f.short_fraction() != 0 ? "io.short_fraction" : "io.short_bytes",
                 "only a short fault takes it"});
  }

  if (action == IoFault::CORRUPT) {
    if (!IoFault::CorruptMode_IsValid(f.corrupt_mode())) {
      e.push_back({"io.corrupt_mode", "must be flip, zero or random"});
    }
    if (!IoFault::Side_IsValid(f.corrupt_side())) {
      e.push_back({"io.corrupt_side", "must be read or write"});
    }
    // The side decides the method; a list naming the other one would never act.
    for (int i = 0; i < f.methods_size(); ++i) {
      auto m = ParseMethod(f.methods(i)).value_or(0);
      auto side = f.corrupt_side() == IoFault::WRITE ? Bit(Method::kWrite) : Bit(Method::kRead);
      if (m != 0 && (m & side) == 0) {
        e.push_back({"io.methods[" + std::to_string(i) + "]",
                     "corrupt_side is " +
                         std::string(f.corrupt_side() == IoFault::WRITE ? "write" : "read") +
                         ": \"" + f.methods(i) + "\" would never be corrupted"});
      }
    }
  } else if (f.corrupt_max_bytes() != 0) {
    e.push_back({"io.corrupt_max_bytes", "only a corrupt fault takes it"});
  }

  const auto& a = f.attr();
  bool any_attr = a.has_size() || a.has_mode() || a.has_mtime_unix() || a.has_atime_unix() ||
                  a.has_ctime_unix() || a.has_uid() || a.has_gid() || a.has_nlink();
  if (action == IoFault::ATTR && !any_attr) {
    e.push_back({"io.attr", "required: at least one attribute to override"});
  }
  if (action != IoFault::ATTR && any_attr) e.push_back({"io.attr", "only an attr fault takes it"});
  if (a.has_mode() && (a.mode() & ~07777u) != 0) {
    e.push_back({"io.attr.mode", "permission bits only (at most 07777)"});
  }

  if (action == IoFault::ENOSPC_AFTER) {
    // 0 is meaningful: full at once.
  } else if (f.enospc_after_bytes() != 0) {
    e.push_back({"io.enospc_after_bytes", "only an enospc-after fault takes it"});
  }
  ValidateCrash(f, e);
  return e;
}

std::string MapVolume(const std::vector<std::string>& overlays, v1::IoFault* io) {
  for (const auto& m : overlays) {
    if (m == io->mount()) return "";
  }
  if (overlays.size() != 1) return "";
  std::string note = " (volume " + io->mount() + " is this agent's overlay " + overlays[0] + ")";
  io->set_mount(overlays[0]);
  return note;
}

}  // namespace faultline::faults::io
