#include "controller/runner/history_load.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "controller/runner/slo.h"
#include "controller/verify/history_checks.h"
#include "controller/verify/traffic_checks.h"
#include "controller/verify/watch_checks.h"
#include "controller/verify/workload.h"
#include "faults/core/duration.h"

namespace faultline::controller {

namespace {
std::chrono::milliseconds Ms(const google::protobuf::Duration& d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(faults::FromProto(d));
}
}  // namespace

struct HistoryLoad::Impl {
  std::unique_ptr<verify::Workload> workload;
  double start_s = 0;
  bool stopped = false;
};

HistoryLoad::HistoryLoad(const v1::Workload& spec, std::vector<std::string> endpoints,
                         uint64_t seed, std::string prefix, bool watch,
                         verify::ClientOptions client)
    : impl_(std::make_unique<Impl>()) {
  verify::WorkloadOptions o;
  o.endpoints = std::move(endpoints);
  o.client = std::move(client);
  o.clients = spec.clients() ? int(spec.clients()) : 2;
  o.keys = spec.keys() ? int(spec.keys()) : 10;
  o.rate = spec.rate();
  o.value_size = spec.value_size();
  o.watch = watch;
  o.seed = seed;
  o.prefix = std::move(prefix);
  if (spec.kind() == v1::Workload::KV) o.cas_weight = 0;
  if (spec.read_percent() > 0) {
    int reads = int(spec.read_percent());
    o.get_weight = reads;
    int writes = 100 - reads;
    o.put_weight = o.cas_weight > 0 ? writes * 2 / 3 : writes;
    o.cas_weight = o.cas_weight > 0 ? writes / 6 : 0;
    o.delete_weight = writes - o.put_weight - o.cas_weight;
  }
  o.serializable_read_percent = int(spec.serializable_read_percent());
  // Issue 13's traffic kinds (experiments/README.md).
  for (const auto& w : spec.watchers()) {
    verify::WatcherOptions wo;
    switch (w.start()) {
      case v1::Watcher::PAST:
        wo.start = verify::WatcherOptions::Start::kPast;
        break;
      case v1::Watcher::COMPACTED:
        wo.start = verify::WatcherOptions::Start::kCompacted;
        break;
      case v1::Watcher::FUTURE:
        wo.start = verify::WatcherOptions::Start::kFuture;
        break;
      default:
        wo.start = verify::WatcherOptions::Start::kCurrent;
        break;
    }
    if (w.offset() > 0) wo.offset = w.offset();
    wo.prev_kv = w.prev_kv();
    wo.progress_notify = w.progress_notify();
    wo.request_progress = Ms(w.request_progress());
    wo.reopen = Ms(w.reopen());
    wo.read_delay = Ms(w.read_delay());
    o.watchers.push_back(wo);
  }
  if (spec.watchers_size() > 0) o.watch = true;
  auto moments = [](const auto& m) {
    verify::Moments out;
    out.every = Ms(m.every());
    if (m.has_after()) out.after = Ms(m.after());
    for (const auto& t : m.at_times()) out.at.push_back(Ms(t));
    return out;
  };
  if (spec.has_compaction()) {
    const auto& c = spec.compaction();
    o.compaction.when = moments(c);
    o.compaction.at = c.at() == v1::Compaction::BEHIND   ? verify::CompactionOptions::At::kBehind
                      : c.at() == v1::Compaction::DELETE ? verify::CompactionOptions::At::kDelete
                                                         : verify::CompactionOptions::At::kLatest;
    o.compaction.behind = c.behind();
    o.compaction.physical = c.physical();
  }
  if (spec.has_defragment()) {
    o.defragment.when = moments(spec.defragment());
    o.defragment.all = spec.defragment().members() == v1::Defragment::ALL;
  }
  if (spec.has_past_reads()) {
    o.past_read_percent = int(spec.past_reads().percent());
    o.past_read_behind = spec.past_reads().behind() ? spec.past_reads().behind() : 1;
  }
  if (spec.has_leases()) {
    const auto& l = spec.leases();
    o.leases.clients = l.clients() ? int(l.clients()) : 1;
    if (l.has_ttl()) o.leases.ttl = Ms(l.ttl());
    o.leases.keys = l.keys() ? int(l.keys()) : 2;
    o.leases.expire = l.expire();
    o.leases.keep_alives = l.keep_alives() || l.expire() ? int(l.keep_alives()) : 2;
  }
  if (spec.has_kubernetes()) {
    const auto& k = spec.kubernetes();
    o.kubernetes.clients = k.clients() ? int(k.clients()) : 2;
    o.kubernetes.objects = k.objects() ? int(k.objects()) : 10;
    if (!k.resource().empty()) o.kubernetes.resource = k.resource();
  }
  impl_->workload = std::make_unique<verify::Workload>(o);
}

HistoryLoad::~HistoryLoad() { Stop(); }

void HistoryLoad::Start(double start_s) {
  impl_->start_s = start_s;
  impl_->workload->Start();
}

void HistoryLoad::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->workload->Stop();
}

std::vector<LatencySecond> HistoryLoad::PerSecond() const {
  // Re-bucketed on the run's clock: the history's seconds start at the workload's start.
  std::map<int, std::vector<double>> ok;
  std::map<int, LatencySecond> out;
  for (const auto& op : impl_->workload->history().ops) {
    int sec = int(impl_->start_s + double(op.invoke_ns) / 1e9);
    auto& l = out[sec];
    l.second = sec;
    ++l.ops;
    if (op.outcome == verify::Outcome::kOk) {
      ok[sec].push_back(double(op.return_ns - op.invoke_ns) / 1e6);
    } else {
      ++l.errors;
    }
  }
  std::vector<LatencySecond> v;
  for (auto& [sec, l] : out) {
    l.p50_ms = Percentile(ok[sec], 50);
    l.p99_ms = Percentile(ok[sec], 99);
    v.push_back(l);
  }
  return v;
}

std::vector<double> HistoryLoad::LatenciesBetween(double from, double to) const {
  std::vector<double> v;
  for (const auto& op : impl_->workload->history().ops) {
    double t = impl_->start_s + double(op.invoke_ns) / 1e9;
    if (op.outcome == verify::Outcome::kOk && t >= from && t < to) {
      v.push_back(double(op.return_ns - op.invoke_ns) / 1e6);
    }
  }
  return v;
}

std::vector<CheckOutcome> HistoryLoad::Check(const std::string& name) const {
  const auto& h = impl_->workload->history();
  std::vector<verify::CheckResult> rs;
  if (name == "WATCH") {
    rs = verify::CheckWatchGuarantees(h);
  } else {
    rs.push_back(name == "LINEARIZABILITY"      ? verify::CheckLinearizable(h)
                 : name == "WATCH_ORDER"        ? verify::CheckWatches(h)
                 : name == "LEASES"             ? verify::CheckLeases(h)
                 : name == "PAST_READS"         ? verify::CheckPastReads(h)
                 : name == "SERIALIZABLE_READS" ? verify::CheckSerializableReads(h)
                                                : verify::CheckLostWrites(h));
  }
  std::vector<CheckOutcome> out;
  for (auto& r : rs) {
    CheckOutcome c;
    // WATCH gives one result per guarantee: WATCH/ordered, WATCH/reliable, ...
    c.name = rs.size() > 1 ? name + "/" + r.name.substr(r.name.find('-') + 1) : name;
    c.passed = r.passed;
    c.summary = r.summary;
    c.evidence = std::move(r.evidence);
    c.evidence["ops"] = h.ops.size();
    out.push_back(std::move(c));
  }
  return out;
}

const verify::History& HistoryLoad::history() const { return impl_->workload->history(); }

}  // namespace faultline::controller
