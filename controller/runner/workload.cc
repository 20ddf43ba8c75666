#include "controller/runner/workload.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "controller/runner/etcd_gateway.h"
#include "faults/core/duration.h"
#include "faults/core/rng.h"

namespace faultline::controller {

using std::chrono::steady_clock;

Workload::Workload(const v1::Workload& spec, std::vector<std::string> endpoints,
                   std::string key_prefix, steady_clock::time_point t0, uint64_t seed)
    : spec_(spec),
      endpoints_(std::move(endpoints)),
      prefix_(std::move(key_prefix)),
      t0_(t0),
      seed_(seed) {
  enabled_ = spec_.kind() != v1::Workload::NONE && !endpoints_.empty();
  if (spec_.clients() == 0) spec_.set_clients(2);
  if (spec_.keys() == 0) spec_.set_keys(16);
  if (spec_.value_size() == 0) spec_.set_value_size(32);
}

Workload::~Workload() { Stop(); }

void Workload::Start() {
  if (!enabled_) return;
  for (uint32_t c = 0; c < spec_.clients(); ++c) {
    threads_.emplace_back([this, c] { Client(int(c)); });
  }
}

void Workload::Stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Workload::Client(int index) {
  EtcdGateway gw(endpoints_[size_t(index) % endpoints_.size()], std::chrono::milliseconds(3000));
  faults::Rng rng = faults::Rng(seed_).Fork("workload.client." + std::to_string(index));
  const uint32_t keys = std::max<uint32_t>(1, spec_.keys() / spec_.clients());
  // Pace: each client takes an equal share of the total rate.
  const double per_client = spec_.rate() > 0 ? spec_.rate() / spec_.clients() : 0;
  const auto gap = per_client > 0 ? std::chrono::duration<double>(1.0 / per_client)
                                  : std::chrono::duration<double>(0);
  auto next = steady_clock::now();
  uint64_t seq = 0;
  while (!stop_) {
    if (per_client > 0) {
      std::this_thread::sleep_until(next);
      next += std::chrono::duration_cast<steady_clock::duration>(gap);
      // Do not try to catch up a backlog after a stall: that would hide it in the latency.
      if (next < steady_clock::now()) next = steady_clock::now();
    }
    if (stop_) break;
    std::string key =
        prefix_ + "c" + std::to_string(index) + "/k" + std::to_string(rng.Below(keys));
    bool read = rng.Percent(spec_.read_percent());
    std::string value;
    if (!read) {
      value = "c" + std::to_string(index) + "-" + std::to_string(++seq) + "-";
      value.resize(std::max<size_t>(value.size(), spec_.value_size()), 'x');
    }
    auto t1 = steady_clock::now();
    bool ok = true;
    try {
      if (read) {
        gw.Get(key);
      } else {
        gw.Put(key, value);
      }
    } catch (const std::exception&) {
      ok = false;
    }
    auto t2 = steady_clock::now();
    std::lock_guard lock(mu_);
    samples_.push_back({std::chrono::duration<double>(t1 - t0_).count(),
                        std::chrono::duration<double, std::milli>(t2 - t1).count(), ok});
    if (!read) {
      auto& ks = keys_[key];
      if (ok) {
        ks.last_acked = value;
        ks.unknown_after.clear();
      } else {
        // A timed-out or refused put may still have been applied.
        ks.unknown_after.push_back(value);
      }
    }
  }
}

namespace {
double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = size_t(std::ceil(p / 100.0 * double(v.size())));
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}
}  // namespace

std::vector<LatencySecond> Workload::PerSecond() const {
  std::lock_guard lock(mu_);
  std::map<int, std::vector<double>> ok;
  std::map<int, LatencySecond> out;
  for (const auto& s : samples_) {
    int sec = int(s.invoke_s);
    auto& l = out[sec];
    l.second = sec;
    ++l.ops;
    if (s.ok) {
      ok[sec].push_back(s.ms);
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

std::vector<double> Workload::LatenciesBetween(double from, double to) const {
  std::lock_guard lock(mu_);
  std::vector<double> v;
  for (const auto& s : samples_) {
    if (s.ok && s.invoke_s >= from && s.invoke_s < to) v.push_back(s.ms);
  }
  return v;
}

size_t Workload::ops() const {
  std::lock_guard lock(mu_);
  return samples_.size();
}

CheckOutcome Workload::CheckLostWrites() const {
  CheckOutcome c;
  c.name = "LOST_WRITES";
  if (!enabled_) {
    c.summary = "no workload ran, so there is no history to check";
    return c;
  }
  std::lock_guard lock(mu_);
  size_t checked = 0;
  nlohmann::json lost = nlohmann::json::array();
  std::string read_error;
  for (const auto& [key, ks] : keys_) {
    if (ks.last_acked.empty() && ks.unknown_after.empty()) continue;
    std::optional<std::string> got;
    bool read_ok = false;
    for (const auto& ep : endpoints_) {
      try {
        got = EtcdGateway(ep, std::chrono::milliseconds(3000)).Get(key);
        read_ok = true;
        break;
      } catch (const std::exception& e) {
        read_error = e.what();
      }
    }
    if (!read_ok) {
      c.summary = "cannot read back " + key + ": " + read_error;
      c.evidence["error"] = read_error;
      return c;
    }
    ++checked;
    bool fine = (got && *got == ks.last_acked) || (!got && ks.last_acked.empty());
    if (!fine && got) {
      fine = std::find(ks.unknown_after.begin(), ks.unknown_after.end(), *got) !=
             ks.unknown_after.end();
    }
    if (!fine && lost.size() < 20) {
      lost.push_back({{"key", key},
                      {"last_acknowledged", ks.last_acked},
                      {"read", got ? *got : std::string("<absent>")},
                      {"unknown_outcome_writes_after", ks.unknown_after.size()}});
    }
  }
  c.evidence["keys_checked"] = checked;
  c.evidence["lost"] = lost;
  c.passed = lost.empty();
  c.summary = c.passed ? "every acknowledged write is visible (" + std::to_string(checked) +
                             " keys read back linearizably)"
                       : std::to_string(lost.size()) + " keys lost their last acknowledged write";
  return c;
}

}  // namespace faultline::controller
