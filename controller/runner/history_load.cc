#include "controller/runner/history_load.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "controller/verify/history_checks.h"
#include "controller/verify/workload.h"

namespace faultline::controller {

struct HistoryLoad::Impl {
  std::unique_ptr<verify::Workload> workload;
  double start_s = 0;
  bool stopped = false;
};

HistoryLoad::HistoryLoad(const v1::Workload& spec, std::vector<std::string> endpoints,
                         uint64_t seed, std::string prefix, bool watch,
                         verify::ClientOptions client)
    : impl_(std::make_unique<Impl>()) {
  // The experiment surface of issue 13's traffic kinds lands before the workload runs them:
  // refuse what this build cannot do rather than run a quieter workload than was asked.
  const std::pair<bool, const char*> pending[] = {
      {spec.watchers_size() > 0, "watchers"}, {spec.has_compaction(), "compaction"},
      {spec.has_defragment(), "defragment"},  {spec.has_past_reads(), "pastReads"},
      {spec.has_leases(), "leases"},          {spec.has_kubernetes(), "kubernetes"}};
  for (const auto& [used, field] : pending) {
    if (used) {
      throw std::invalid_argument(std::string("workload.") + field +
                                  ": this build's workload does not run this traffic yet");
    }
  }
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
    auto& xs = ok[sec];
    std::sort(xs.begin(), xs.end());
    auto pct = [&](double p) {
      if (xs.empty()) return 0.0;
      size_t i = size_t(std::ceil(p / 100.0 * double(xs.size())));
      return xs[std::min(xs.size() - 1, i == 0 ? 0 : i - 1)];
    };
    l.p50_ms = pct(50);
    l.p99_ms = pct(99);
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

CheckOutcome HistoryLoad::Check(const std::string& name) const {
  const auto& h = impl_->workload->history();
  verify::CheckResult r = name == "LINEARIZABILITY" ? verify::CheckLinearizable(h)
                          : name == "WATCH_ORDER"   ? verify::CheckWatches(h)
                                                    : verify::CheckLostWrites(h);
  CheckOutcome c;
  c.name = name;
  c.passed = r.passed;
  c.summary = r.summary;
  c.evidence = r.evidence;
  c.evidence["ops"] = h.ops.size();
  return c;
}

}  // namespace faultline::controller
