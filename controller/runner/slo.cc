#include "controller/runner/slo.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

namespace faultline::controller {
namespace {

std::string Secs(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2fs", s);
  return b;
}

std::string Ms(double ms) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1fms", ms);
  return b;
}

// An SLO's outcome, before its verdict.
CheckOutcome Slo(const char* name) {
  CheckOutcome c;
  c.name = name;
  c.slo = true;
  return c;
}

}  // namespace

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = size_t(std::ceil(p / 100.0 * double(v.size())));
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

std::string WorkingLeader(const LeaderSample& s) {
  std::map<std::string, int> votes;
  for (const auto& [m, l] : s.leader_by_member) {
    if (!l.empty() && l != "?") ++votes[l];
  }
  for (const auto& [l, n] : votes) {
    auto self = s.leader_by_member.find(l);
    if (size_t(n) * 2 > s.leader_by_member.size() && self != s.leader_by_member.end() &&
        self->second == l) {
      return l;
    }
  }
  return "";
}

FaultSpan SpanOf(const std::vector<FaultWindow>& windows, double now) {
  FaultSpan span;
  for (const auto& w : windows) {
    if (span.first_start < 0 || w.start < span.first_start) span.first_start = w.start;
    span.last_end = std::max(span.last_end, w.end < 0 ? now : w.end);
  }
  return span;
}

std::vector<double> LatenciesDuring(const std::vector<FaultWindow>& windows,
                                    const LatenciesBetween& between) {
  std::vector<double> during;
  for (const auto& w : windows) {
    auto v = between(w.start, w.end < 0 ? 1e18 : w.end);
    during.insert(during.end(), v.begin(), v.end());
  }
  return during;
}

CheckOutcome P99LatencySlo(const std::vector<double>& during_ms, double limit_ms) {
  CheckOutcome c = Slo("p99_latency");
  double p99 = Percentile(during_ms, 99);
  c.evidence = {{"p99_ms", p99}, {"limit_ms", limit_ms}, {"samples", during_ms.size()}};
  c.passed = !during_ms.empty() && p99 <= limit_ms;
  c.summary = during_ms.empty() ? "no successful request while a fault was active"
                                : "p99 " + Ms(p99) + " during faults (limit " + Ms(limit_ms) + ")";
  return c;
}

CheckOutcome TimeToLeaderSlo(const std::vector<LeaderSample>& leaders, double first_fault,
                             double limit_s, double interval_s) {
  CheckOutcome c = Slo("time_to_leader");
  std::string before;
  for (const auto& s : leaders) {
    if (s.t < first_fault) before = WorkingLeader(s);
  }
  double worst = 0, lost_at = -1;
  bool replaced = false;
  for (const auto& s : leaders) {
    if (first_fault < 0 || s.t < first_fault) continue;
    std::string l = WorkingLeader(s);
    if (l.empty() && lost_at < 0) lost_at = s.t;
    if (!l.empty() && lost_at >= 0) {
      worst = std::max(worst, s.t - lost_at);
      lost_at = -1;
    }
    if (!replaced && !l.empty() && !before.empty() && l != before) {
      replaced = true;
      worst = std::max(worst, s.t - first_fault);
    }
  }
  bool never = lost_at >= 0;
  c.evidence = {{"worst_s", worst},           {"limit_s", limit_s},
                {"leader_before", before},    {"leader_replaced", replaced},
                {"leaderless_at_end", never}, {"sample_interval_s", interval_s}};
  c.passed = !never && worst <= limit_s;
  c.summary = never ? "no leader at the end of the run"
                    : "leader available again within " + Secs(worst) + " (limit " + Secs(limit_s) +
                          ", sampled every " + Secs(interval_s) + ")";
  return c;
}

CheckOutcome TimeToHealthySlo(const std::vector<LeaderSample>& leaders, double last_end,
                              double healthy_at, double limit_s) {
  CheckOutcome c = Slo("time_to_healthy");
  double at = -1;
  for (const auto& s : leaders) {
    if (s.t < last_end) continue;
    std::set<std::string> named;
    for (const auto& [m, l] : s.leader_by_member) named.insert(l);
    if (named.size() == 1 && !named.begin()->empty() && *named.begin() != "?") {
      at = s.t;
      break;
    }
  }
  if (at < 0) at = healthy_at;
  double took = at < 0 ? -1 : std::max(0.0, at - std::max(0.0, last_end));
  c.evidence = {{"seconds", took}, {"limit_s", limit_s}};
  c.passed = took >= 0 && took <= limit_s;
  c.summary = took < 0 ? "never healthy after the faults"
                       : "healthy " + Secs(took) + " after the last fault ended";
  return c;
}

}  // namespace faultline::controller
