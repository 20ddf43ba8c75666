#include <cerrno>
#include <cstring>

#include "cli/inject_command.h"
#include "cli/inject_families.h"
#include "faults/core/duration.h"
#include "faults/io/spec.h"

namespace faultline::cli {
namespace {

struct IoFlags {
  std::string mount, path = "**", delay, jitter, distribution = "fixed";
  std::vector<std::string> methods, errnos;
  double percent = 100;
  int64_t max_count = 0;
  double short_fraction = 0;
  uint64_t short_bytes = 0;
  std::string corrupt_mode = "flip", corrupt_side = "read";
  uint32_t corrupt_max_bytes = 0;
  std::string size, mode, mtime;
  uint64_t enospc_after = 0;
  // crash model
  int64_t at_op = 0;
  bool after_op = false;
  std::string crash_after, restart;
  uint64_t max_unsynced = 0;
  bool names = false;
  std::vector<uint64_t> tear_at;
  uint32_t parts = 0;
  std::vector<uint32_t> keep;
};

void AddAction(CLI::App* family, GlobalOptions& g, v1::IoFault::Action action,
               const std::string& help, const std::string& alias = "") {
  auto* cmd = family->add_subcommand(faults::io::ActionName(action), help);
  if (!alias.empty()) cmd->alias(alias);
  auto common = std::make_shared<InjectCommon>();
  auto f = std::make_shared<IoFlags>();
  cmd->add_option("--mount", f->mount, "the overlay's directory (faultline overlay mount DIR)")
      ->required();
  cmd->add_option("--path", f->path, "glob of affected paths under the mount (** aware)")
      ->capture_default_str();
  cmd->add_option("--methods", f->methods,
                  "FUSE methods, e.g. fsync,fdatasync,write,read,open (default: all)")
      ->delimiter(',');
  cmd->add_option("--percent", f->percent, "percent of matching ops (seeded)")
      ->capture_default_str();
  cmd->add_option("--max-count", f->max_count, "act at most this many times (0: no limit)");
  switch (action) {
    case v1::IoFault::LATENCY:
      cmd->add_option("--delay", f->delay, "added latency, e.g. 100ms")->required();
      cmd->add_option("--jitter", f->jitter, "spread (uniform) or standard deviation (normal)");
      cmd->add_option("--distribution", f->distribution, "fixed, uniform or normal")
          ->check(NamesOf<v1::IoFault::Distribution>());
      break;
    case v1::IoFault::ERRNO:
      cmd->add_option("--errno", f->errnos,
                      "errno name, optionally weighted: EIO or EIO:3,ENOSPC:1 (repeatable)")
          ->delimiter(',')
          ->required();
      break;
    case v1::IoFault::SHORT:
      cmd->add_option("--fraction", f->short_fraction, "return this fraction of the bytes asked");
      cmd->add_option("--bytes", f->short_bytes, "return at most this many bytes");
      break;
    case v1::IoFault::CORRUPT:
      cmd->add_option("--mode", f->corrupt_mode, "flip, zero or random")
          ->check(NamesOf<v1::IoFault::CorruptMode>());
      cmd->add_option("--side", f->corrupt_side, "read (what the app sees) or write (the disk)")
          ->check(NamesOf<v1::IoFault::Side>());
      cmd->add_option("--max-bytes", f->corrupt_max_bytes, "bytes changed per op (default 1)");
      break;
    case v1::IoFault::ATTR:
      cmd->add_option("--size", f->size, "size to report (bytes)");
      cmd->add_option("--mode", f->mode, "permission bits to report, octal (e.g. 0400)");
      cmd->add_option("--mtime", f->mtime, "mtime to report (unix seconds)");
      break;
    case v1::IoFault::ENOSPC_AFTER:
      cmd->add_option("--after", f->enospc_after, "bytes that may still be written")->required();
      break;
    default:
      break;
  }
  bool counted = action == v1::IoFault::CRASH_AT || action == v1::IoFault::TORN_WRITE ||
                 action == v1::IoFault::TORN_SEQUENCE;
  if (counted) {
    cmd->add_option("--at-op", f->at_op,
                    "the Nth matching op (after --percent) crashes (default 1)");
  }
  if (action == v1::IoFault::CRASH_AT) {
    cmd->add_flag("--after-op", f->after_op, "let the op complete, then crash (default: before)");
  }
  if (action == v1::IoFault::LOSE_UNSYNCED) {
    cmd->add_option("--crash-after", f->crash_after, "crash this long after arming, e.g. 10s");
  }
  if (action == v1::IoFault::LOSE_UNSYNCED || action == v1::IoFault::TORN_SEQUENCE) {
    cmd->add_option("--max-unsynced", f->max_unsynced,
                    "bytes of unsynced data held at most; past it the overlay crashes early "
                    "(default 64 MiB)");
    cmd->add_flag("--names", f->names,
                  "directory changes count too: the crash undoes creates, renames and unlinks "
                  "whose directory was not fsynced since (POSIX's rule)");
  }
  if (action == v1::IoFault::TORN_WRITE) {
    cmd->add_option("--tear-at", f->tear_at, "offsets inside the write where it splits")
        ->delimiter(',');
    cmd->add_option("--parts", f->parts, "split into N equal parts (default 2)");
  }
  if (action == v1::IoFault::TORN_WRITE || action == v1::IoFault::TORN_SEQUENCE) {
    cmd->add_option("--keep", f->keep,
                    "parts (torn-write) or writes since the last sync (torn-sequence) that "
                    "persist, 0-based (default: a seeded choice)")
        ->delimiter(',');
  }
  if (counted || action == v1::IoFault::LOSE_UNSYNCED || action == v1::IoFault::CRASH) {
    cmd->add_option("--restart", f->restart, "managed process to start again after the crash");
  }
  common->AddFlags(cmd);
  cmd->callback([&g, common, f, action, cmd] {
    v1::FaultSpec spec;
    auto* io = spec.mutable_io();
    io->set_action(action);
    io->set_mount(f->mount);
    io->set_path(f->path);
    for (const auto& m : f->methods) io->add_methods(m);
    io->set_percent(f->percent);
    io->set_max_count(f->max_count);
    if (!f->delay.empty()) faults::ToProto(DurationFlag("--delay", f->delay), io->mutable_delay());
    if (!f->jitter.empty()) {
      faults::ToProto(DurationFlag("--jitter", f->jitter), io->mutable_jitter());
    }
    io->set_distribution(EnumFlag<v1::IoFault::Distribution>("--distribution", f->distribution));
    for (const auto& e : f->errnos) {
      auto* w = io->add_errnos();
      auto colon = e.find(':');
      w->set_name(e.substr(0, colon));
      if (colon != std::string::npos) {
        try {
          w->set_weight(static_cast<uint32_t>(std::stoul(e.substr(colon + 1))));
        } catch (const std::exception&) {
          throw CLI::ValidationError("--errno", "\"" + e + "\": weight must be a number");
        }
      }
    }
    io->set_short_fraction(f->short_fraction);
    io->set_short_bytes(f->short_bytes);
    if (action == v1::IoFault::CORRUPT) {
      io->set_corrupt_mode(EnumFlag<v1::IoFault::CorruptMode>("--mode", f->corrupt_mode));
      io->set_corrupt_side(EnumFlag<v1::IoFault::Side>("--side", f->corrupt_side));
      io->set_corrupt_max_bytes(f->corrupt_max_bytes);
    }
    if (action == v1::IoFault::ATTR) {
      auto* a = io->mutable_attr();
      try {
        if (!f->size.empty()) a->set_size(std::stoull(f->size));
        if (!f->mode.empty()) a->set_mode(static_cast<uint32_t>(std::stoul(f->mode, nullptr, 8)));
        if (!f->mtime.empty()) a->set_mtime_unix(std::stoll(f->mtime));
      } catch (const std::exception&) {
        throw CLI::ValidationError("--size/--mode/--mtime", "must be numbers (mode in octal)");
      }
    }
    io->set_enospc_after_bytes(f->enospc_after);
    auto* c = io->mutable_crash();
    c->set_at_op(f->at_op);
    c->set_after_op(f->after_op);
    if (!f->crash_after.empty()) {
      faults::ToProto(DurationFlag("--crash-after", f->crash_after), c->mutable_after());
    }
    c->set_restart(f->restart);
    c->set_max_unsynced_bytes(f->max_unsynced);
    c->set_names(f->names);
    for (auto t : f->tear_at) c->add_tear_at(t);
    c->set_parts(f->parts);
    for (auto k : f->keep) c->add_keep(k);
    if (action == v1::IoFault::CRASH) io->clear_path();
    (void)cmd;
    common->Submit(g, spec);
  });
}

}  // namespace

void AddInjectIo(CLI::App* inject, GlobalOptions& g) {
  auto* family =
      inject->add_subcommand("io", "IO faults through a faultline overlay (faultline overlay)");
  family->require_subcommand(1);
  AddAction(family, g, v1::IoFault::LATENCY, "delay matching filesystem ops");
  AddAction(family, g, v1::IoFault::ERRNO, "fail matching ops with an errno");
  AddAction(family, g, v1::IoFault::SHORT, "partial reads/writes");
  AddAction(family, g, v1::IoFault::CORRUPT, "corrupt bytes on read or write");
  AddAction(family, g, v1::IoFault::ATTR, "override file attributes");
  // `enospc` was this command's first name; it stays as an alias.
  AddAction(family, g, v1::IoFault::ENOSPC_AFTER, "the filesystem is full after N more bytes",
            "enospc");
  AddAction(family, g, v1::IoFault::LOSE_UNSYNCED,
            "track writes since each file's last fsync; a crash drops them");
  AddAction(family, g, v1::IoFault::TORN_WRITE,
            "the Nth matching write reaches the file in part, then a crash");
  AddAction(family, g, v1::IoFault::TORN_SEQUENCE,
            "at the Nth matching sync only chosen writes since the last one persist, then a crash");
  AddAction(family, g, v1::IoFault::CRASH_AT,
            "crash before (or after) the Nth matching write or sync");
  AddAction(family, g, v1::IoFault::SKIP_SYNC, "fsync/fdatasync report success without syncing");
  AddAction(family, g, v1::IoFault::CRASH,
            "crash now: kill the overlay's users, drop what lose-unsynced tracks");
}

}  // namespace faultline::cli
