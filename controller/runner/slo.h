#pragma once

#include <functional>
#include <string>
#include <vector>

#include "controller/runner/run_result.h"

// The run's SLOs as pure functions of what the run recorded (leader samples, fault windows,
// workload latencies): no clock, no network, no etcd, so each is tested on hand-made sequences.
// Times are run seconds, as in RunResult.
namespace faultline::controller {

// The p-th percentile (nearest rank) of `v`; 0 for an empty `v`.
double Percentile(std::vector<double> v, double p);

// The working leader of one sample: the member a quorum of members names and that names itself
// ("" when there is none). Followers keep naming a paused leader until their election timeout;
// that stale view must not count as having a leader.
std::string WorkingLeader(const LeaderSample& s);

// When faults were active: the earliest window start and the latest end, a window still open
// ending at `now`. Both -1 without windows.
struct FaultSpan {
  double first_start = -1;
  double last_end = -1;
};
FaultSpan SpanOf(const std::vector<FaultWindow>& windows, double now);

// Latencies (ms) of successful requests issued in [from, to).
using LatenciesBetween = std::function<std::vector<double>(double from, double to)>;

// The latencies of requests issued while each window was active (a window still open has no
// end), window after window: a request inside two overlapping windows counts twice.
std::vector<double> LatenciesDuring(const std::vector<FaultWindow>& windows,
                                    const LatenciesBetween& between);

// "p99_latency": the p99 of `during_ms` is at most `limit_ms`; fails when nothing succeeded
// while a fault was active.
CheckOutcome P99LatencySlo(const std::vector<double>& during_ms, double limit_ms);

// "time_to_leader": the longest span from the first fault on without a working leader. When the
// faults replaced the leader, the span runs from the first fault's start (the old leader stopped
// serving then, whatever the followers still believed) to the first sample showing the new one.
// Fails when the last sample has no leader. Resolution: `interval_s`, the sampling interval.
CheckOutcome TimeToLeaderSlo(const std::vector<LeaderSample>& leaders, double first_fault,
                             double limit_s, double interval_s);

// "time_to_healthy": from the last fault's end to the first sample in which every member names
// the same leader; without such a sample, to `healthy_at` (when the post-run health wait saw it,
// -1 never).
CheckOutcome TimeToHealthySlo(const std::vector<LeaderSample>& leaders, double last_end,
                              double healthy_at, double limit_s);

}  // namespace faultline::controller
