#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <chrono>
#include <set>

#include "experiments/etcd_version.h"
#include "experiments/internal.h"
#include "faults/core/duration.h"
#include "faults/specs/specs.h"

namespace faultline::experiments::internal {

namespace {

using v1::Step;
using v1::TargetSelector;

// Paths of the string fields (proto names, "process.target.cmdline", "net.to[0]") holding a
// ${label:KEY} placeholder: the runner fills them per agent, so they are checked there.
void PlaceholderPaths(const google::protobuf::Message& m, const std::string& prefix,
                      std::set<std::string>& out) {
  using google::protobuf::FieldDescriptor;
  const auto* refl = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  refl->ListFields(m, &fields);
  auto has = [](const std::string& v) { return v.find("${label:") != std::string::npos; };
  for (const auto* f : fields) {
    const std::string p = prefix + f->name();
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      if (!f->is_repeated()) {
        if (has(refl->GetString(m, f))) out.insert(p);
        continue;
      }
      for (int i = 0; i < refl->FieldSize(m, f); ++i) {
        if (has(refl->GetRepeatedString(m, f, i))) out.insert(p + "[" + std::to_string(i) + "]");
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_map()) {
      if (!f->is_repeated()) {
        PlaceholderPaths(refl->GetMessage(m, f), p + ".", out);
        continue;
      }
      for (int i = 0; i < refl->FieldSize(m, f); ++i) {
        PlaceholderPaths(refl->GetRepeatedMessage(m, f, i), p + "[" + std::to_string(i) + "].",
                         out);
      }
    }
  }
}

// A family's field path ("io.max_count", "io.errnos[0].name") as experiment files write it
// ("io.maxCount"): each segment's lowerCamel JSON name, found through the descriptors.
std::string YamlPath(const std::string& field) {
  const google::protobuf::Descriptor* d = v1::FaultSpec::descriptor();
  std::string out;
  size_t i = 0;
  while (i < field.size()) {
    size_t end = field.find_first_of(".[", i);
    if (end == std::string::npos) end = field.size();
    std::string name = field.substr(i, end - i);
    const auto* f = d ? d->FindFieldByName(name) : nullptr;
    out += f ? f->json_name() : name;
    d = f ? f->message_type() : nullptr;
    if (end < field.size() && field[end] == '[') {
      size_t close = field.find(']', end);
      if (close == std::string::npos) close = field.size() - 1;
      out += field.substr(end, close - end + 1);
      end = close + 1;
    }
    if (end < field.size() && field[end] == '.') {
      out += '.';
      ++end;
    }
    i = end;
  }
  return out;
}

// `peer` selectors default to all; a fault's own target must say how many it hits unless it can
// only be one (the leader, or one named member): a forgotten mode must not fault every member.
void CheckTarget(const TargetSelector& t, const std::string& path, bool is_peer,
                 const std::set<std::string>& done, Reporter& r) {
  if (!t.same_as().empty()) {
    if (!t.match_labels().empty() || t.role() != TargetSelector::ROLE_UNSPECIFIED ||
        t.members_size() > 0 || t.mode() != TargetSelector::MODE_UNSPECIFIED || t.value() != 0) {
      r.ErrorAt(path + ".sameAs", "stands alone: drop matchLabels, role, members, mode and value");
    }
    if (!done.count(t.same_as())) {
      r.ErrorAt(path + ".sameAs", "no fault step named \"" + t.same_as() +
                                      "\" ends before this one (name an earlier step of the "
                                      "same run, not one running beside it)");
    }
    return;
  }
  if (!is_peer && t.mode() == TargetSelector::MODE_UNSPECIFIED &&
      t.role() != TargetSelector::LEADER && t.members_size() != 1) {
    r.ErrorAt(path + ".mode",
              "required: one, all, fixed, fixed-percent or random-max-percent (only the leader or "
              "a single named member may leave it out)");
  }
  switch (t.mode()) {
    case TargetSelector::MODE_UNSPECIFIED:
    case TargetSelector::ONE:
    case TargetSelector::ALL:
      if (t.value() != 0)
        r.ErrorAt(path + ".value",
                  "only used with modes fixed, fixed-percent "
                  "and random-max-percent");
      break;
    case TargetSelector::FIXED:
      if (t.value() == 0) r.ErrorAt(path + ".value", "mode fixed needs a count >= 1");
      break;
    case TargetSelector::FIXED_PERCENT:
    case TargetSelector::RANDOM_MAX_PERCENT:
      if (t.value() == 0 || t.value() > 100) {
        r.ErrorAt(path + ".value", "must be a percent within 1..100 for this mode");
      }
      break;
    default:
      break;
  }
  for (const auto& [k, v] : t.match_labels()) {
    if (k.empty()) r.ErrorAt(path + ".matchLabels", "label keys must not be empty");
  }
  std::set<std::string> seen;
  for (int i = 0; i < t.members_size(); ++i) {
    const std::string p = path + ".members[" + std::to_string(i) + "]";
    if (t.members(i).empty()) r.ErrorAt(p, "must not be empty");
    if (!seen.insert(t.members(i)).second) r.ErrorAt(p, "listed twice");
  }
}

// `done`: names of the fault steps that have ended before this step starts (what sameAs may
// name); this step's own names are added to it.
void CheckStep(const Step& s, const std::string& path, std::set<std::string>& done, Reporter& r) {
  const bool wait = s.has_wait();
  const int actions = (s.has_fault() ? 1 : 0) + (wait ? 1 : 0) + (s.parallel_size() > 0 ? 1 : 0) +
                      (s.serial_size() > 0 ? 1 : 0);
  if (actions != 1) {
    r.ErrorAt(path, actions == 0 ? "a step needs one of fault, wait, parallel, serial"
                                 : "a step has exactly one of fault, wait, parallel, serial");
    return;
  }
  if (s.has_fault()) {
    const auto& f = s.fault();
    if (f.fault_case() == v1::FaultSpec::FAULT_NOT_SET) {
      r.ErrorAt(path + ".fault", "names no fault family (process, io, net, stress, syscall, time)");
    }
    // The family's own rules, the same the agent applies: a bad spec is refused when the
    // experiment is loaded or submitted, not found by an agent in the middle of a run.
    std::set<std::string> placeholders;
    PlaceholderPaths(f, "", placeholders);
    for (const auto& err : faults::ValidateSpec(f)) {
      if (placeholders.count(err.field)) continue;
      r.ErrorAt(path + ".fault." + YamlPath(err.field), err.reason);
    }
    if (!s.has_target()) {
      r.ErrorAt(path, "target: required for a fault step (e.g. role: leader, mode: one)");
    } else {
      CheckTarget(s.target(), path + ".target", false, done, r);
    }
    if (s.has_peer()) {
      if (!f.has_net()) {
        r.ErrorAt(path + ".peer", "only network faults have a peer");
      } else {
        CheckTarget(s.peer(), path + ".peer", true, done, r);
      }
    }
    if (faults::FromProto(s.duration()).count() <= 0 && faults::NeedsDuration(f)) {
      r.ErrorAt(path + ".duration", "required: how long the fault lasts (e.g. 30s)");
    }
    if (!s.name().empty()) done.insert(s.name());
    return;
  }
  for (const char* field : {"target", "peer", "duration"}) {
    const auto* fd = Step::descriptor()->FindFieldByName(field);
    if (s.GetReflection()->HasField(s, fd)) {
      r.ErrorAt(path + "." + fd->json_name(), "only fault steps have a " + std::string(field));
    }
  }
  if (wait && faults::FromProto(s.wait()).count() <= 0) {
    r.ErrorAt(path + ".wait", "must be longer than 0");
  }
  // Parallel branches run beside each other: each sees only what ended before the group.
  std::set<std::string> after_group = done;
  for (int i = 0; i < s.parallel_size(); ++i) {
    std::set<std::string> branch = done;
    CheckStep(s.parallel(i), path + ".parallel[" + std::to_string(i) + "]", branch, r);
    after_group.insert(branch.begin(), branch.end());
  }
  done = std::move(after_group);
  for (int i = 0; i < s.serial_size(); ++i) {
    CheckStep(s.serial(i), path + ".serial[" + std::to_string(i) + "]", done, r);
  }
}

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

// A recurring traffic action: `every` and/or `atTimes`, `after` only with `every`.
template <typename M>
void CheckMoments(const M& m, const std::string& path, Reporter& r) {
  const nanoseconds every = faults::FromProto(m.every());
  if (every.count() <= 0 && m.at_times_size() == 0) {
    r.ErrorAt(path, "needs every (a period) or atTimes (moments after the workload starts)");
  }
  if (m.has_every() && every < milliseconds(100)) {
    r.ErrorAt(path + ".every", "must be at least 100ms");
  }
  if (m.has_after() && !m.has_every()) r.ErrorAt(path + ".after", "only used with every");
  for (int i = 0; i < m.at_times_size(); ++i) {
    if (faults::FromProto(m.at_times(i)).count() < 0) {
      r.ErrorAt(path + ".atTimes[" + std::to_string(i) + "]", "must not be negative");
    }
  }
}

void CheckWorkload(const v1::Workload& w, const std::string& path, Reporter& r) {
  const bool traffic = w.watchers_size() > 0 || w.has_compaction() || w.has_defragment() ||
                       w.has_past_reads() || w.has_leases() || w.has_kubernetes();
  if (w.kind() == v1::Workload::NONE && traffic) {
    r.ErrorAt(path + ".kind",
              "kind none runs no traffic: drop watchers, compaction, defragment, "
              "pastReads, leases and kubernetes, or choose kv or txn");
  }
  if (w.serializable_read_percent() < 0 || w.serializable_read_percent() > 100) {
    r.ErrorAt(path + ".serializableReadPercent", "must be within 0..100");
  }
  for (int i = 0; i < w.watchers_size(); ++i) {
    const auto& wt = w.watchers(i);
    const std::string p = path + ".watchers[" + std::to_string(i) + "]";
    if (wt.offset() != 0 && wt.start() != v1::Watcher::PAST && wt.start() != v1::Watcher::FUTURE) {
      r.ErrorAt(p + ".offset", "only used with start past or future");
    }
    if (wt.start() == v1::Watcher::COMPACTED && !w.has_compaction()) {
      r.ErrorAt(p + ".start", "compacted needs the workload's compaction traffic");
    }
    if (wt.has_request_progress() && faults::FromProto(wt.request_progress()) < milliseconds(100)) {
      r.ErrorAt(p + ".requestProgress", "must be at least 100ms");
    }
    if (wt.has_reopen() && faults::FromProto(wt.reopen()) < milliseconds(100)) {
      r.ErrorAt(p + ".reopen", "must be at least 100ms");
    }
    if (wt.has_read_delay()) {
      const auto d = faults::FromProto(wt.read_delay());
      if (d < milliseconds(1) || d > seconds(10)) {
        r.ErrorAt(p + ".readDelay", "must be within 1ms..10s");
      }
    }
  }
  if (w.has_compaction()) {
    const auto& c = w.compaction();
    const std::string p = path + ".compaction";
    CheckMoments(c, p, r);
    if (c.at() == v1::Compaction::BEHIND && c.behind() == 0) {
      r.ErrorAt(p + ".behind", "at behind needs behind >= 1 (revisions before the current one)");
    }
    if (c.at() != v1::Compaction::BEHIND && c.behind() != 0) {
      r.ErrorAt(p + ".behind", "only used with at: behind");
    }
  }
  if (w.has_defragment()) CheckMoments(w.defragment(), path + ".defragment", r);
  if (w.has_past_reads()) {
    if (w.kind() != v1::Workload::TXN) {
      r.ErrorAt(path + ".pastReads",
                "past reads ride on compare-and-swap transactions: needs kind txn");
    }
    if (w.past_reads().percent() <= 0) {
      r.ErrorAt(path + ".pastReads.percent", "required: percent (1..100) of transactions");
    }
  }
  if (w.has_leases()) {
    const auto& l = w.leases();
    if (l.has_ttl() && faults::FromProto(l.ttl()) < seconds(2)) {
      r.ErrorAt(path + ".leases.ttl", "must be at least 2s (etcd's minimum lease TTL)");
    }
    if (l.keys() > 100) r.ErrorAt(path + ".leases.keys", "at most 100 keys per lease");
    if (l.clients() > 64) r.ErrorAt(path + ".leases.clients", "at most 64");
  }
  if (w.has_kubernetes()) {
    const auto& k = w.kubernetes();
    if (k.clients() > 64) r.ErrorAt(path + ".kubernetes.clients", "at most 64");
    const std::string& res = k.resource();
    if (res.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") != std::string::npos) {
      r.ErrorAt(path + ".kubernetes.resource",
                "lower-case letters, digits, '-' and '.' only (a Kubernetes resource name)");
    }
  }
}

void FillImpliedDuration(v1::Step* s) {
  if (s->has_fault() && faults::FromProto(s->duration()).count() <= 0) {
    auto implied = faults::ImpliedDuration(s->fault());
    if (implied.count() > 0) faults::ToProto(implied, s->mutable_duration());
  }
  for (auto& p : *s->mutable_parallel()) FillImpliedDuration(&p);
  for (auto& p : *s->mutable_serial()) FillImpliedDuration(&p);
}

}  // namespace

void FillImpliedDurations(v1::Experiment* e) {
  for (auto& s : *e->mutable_steps()) FillImpliedDuration(&s);
}

void ValidateInto(const v1::Experiment& e, const std::string& prefix, const LoadOptions& o,
                  Reporter& r) {
  if (e.name().empty()) r.ErrorAt(prefix.empty() ? "name" : "metadata.name", "required");
  if (e.steps_size() == 0) r.ErrorAt(prefix + "steps", "required: at least one step");
  std::set<std::string> done;
  for (int i = 0; i < e.steps_size(); ++i) {
    CheckStep(e.steps(i), prefix + "steps[" + std::to_string(i) + "]", done, r);
  }
  if (e.has_workload()) CheckWorkload(e.workload(), prefix + "workload", r);
  std::set<int> checks;
  for (int i = 0; i < e.checks_size(); ++i) {
    const std::string p = prefix + "checks[" + std::to_string(i) + "]";
    if (!checks.insert(e.checks(i)).second) r.ErrorAt(p, "listed twice");
    // A check with nothing to look at would pass on nothing: refuse it up front.
    const auto& w = e.workload();
    if (e.checks(i) == v1::LEASES && !w.has_leases()) {
      r.ErrorAt(p, "leases needs the workload's leases traffic");
    }
    if (e.checks(i) == v1::PAST_READS && !w.has_past_reads() && !w.has_kubernetes()) {
      r.ErrorAt(p, "past-reads needs the workload's pastReads or kubernetes traffic");
    }
    if (e.checks(i) == v1::SERIALIZABLE_READS &&
        (w.kind() == v1::Workload::NONE || w.serializable_read_percent() <= 0)) {
      r.ErrorAt(p, "serializable-reads needs the workload's serializableReadPercent above 0");
    }
    if ((e.checks(i) == v1::WATCH || e.checks(i) == v1::WATCH_ORDER) &&
        w.kind() == v1::Workload::NONE) {
      r.ErrorAt(p, "watch checks need a workload (kind none records no watch events)");
    }
  }
  if (e.has_schedule()) {
    const auto& s = e.schedule();
    const std::string p = prefix + "schedule";
    if (s.cron().empty()) {
      r.ErrorAt(p + ".cron", "required (e.g. \"@every 10m\" or \"*/5 * * * *\")");
    } else if (o.validate_cron) {
      std::string why = o.validate_cron(s.cron());
      if (!why.empty()) r.ErrorAt(p + ".cron", why);
    }
    if (s.starting_deadline_seconds() < 0) {
      r.ErrorAt(p + ".startingDeadlineSeconds", "must not be negative");
    }
  }
  if (e.has_cluster()) {
    const auto& c = e.cluster();
    const std::string p = prefix + "cluster";
    if (std::string why = VersionRangeError(c.etcd_version()); !why.empty()) {
      r.ErrorAt(p + ".etcdVersion", why);
    }
    if (c.members() != 0 && c.members() != 3 && c.members() != 5) {
      r.ErrorAt(p + ".members",
                "want 3 or 5 (the lab's sizes), got " + std::to_string(c.members()));
    }
    for (const auto& [name, value] : c.etcd_flags()) {
      if (name.empty() || name.starts_with("-") || name.find('=') != std::string::npos) {
        r.ErrorAt(p + ".etcdFlags", "flag \"" + name +
                                        "\": write the name without leading dashes or '=' "
                                        "(e.g. snapshot-count: \"100\")");
      }
    }
  }
  if (e.has_bug()) {
    const auto& b = e.bug();
    const std::string p = "metadata.bug";
    if (b.issue().empty()) r.ErrorAt(p + ".issue", "required: the issue's URL");
    if (b.symptom().empty()) r.ErrorAt(p + ".symptom", "required: what a user sees");
    // `fixed` may be empty: no release fixes the bug yet.
    if (b.affected().empty()) {
      r.ErrorAt(p + ".affected", "required: a version range, e.g. \"<3.5.18\"");
    }
    for (auto [field, range] : {std::pair{"affected", b.affected()}, {"fixed", b.fixed()}}) {
      if (std::string why = VersionRangeError(range); !why.empty()) {
        r.ErrorAt(p + "." + field, why);
      }
    }
    if (b.seen_by_size() == 0) r.ErrorAt(p + ".seenBy", "required: the checks that see the bug");
  }
}

}  // namespace faultline::experiments::internal
