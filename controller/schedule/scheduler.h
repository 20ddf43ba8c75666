#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "controller/schedule/cron.h"
#include "faultline/v1/experiment.pb.h"

namespace faultline::controller {

// How a schedule behaves, as chaos-mesh's Schedule (and Kubernetes' CronJob) do.
struct SchedulePolicy {
  enum class Concurrency { kForbid, kAllow };
  Concurrency concurrency = Concurrency::kForbid;
  // A due run found later than this is not started but recorded as missed. Zero: no deadline.
  std::chrono::seconds starting_deadline{0};
  // Finished runs (and skipped or missed ones) kept in the history.
  size_t history_limit = 10;

  static SchedulePolicy FromProto(const v1::Schedule& s);
};

// What happened to one due time.
enum class Outcome {
  kRunning,
  kSucceeded,
  kFailed,
  kSkippedForbid,  // due while a run was active under Forbid
  kMissed,         // due while the controller was down (or busy) and too late to start
};
const char* OutcomeName(Outcome o);

struct RunRecord {
  std::string id;  // "<schedule>-<scheduled unix seconds>"
  Seconds scheduled{};
  Seconds decided{};  // when the scheduler looked at it (started, skipped or found missed)
  std::optional<Seconds> finished;
  Outcome outcome = Outcome::kRunning;
  // Several due times handled at once (missed during downtime) share one record.
  uint64_t count = 1;
};

// Everything a schedule needs to carry on after a controller restart. Serialised as JSON.
struct ScheduleState {
  Seconds created{};
  // The latest due time already handled; the next one is searched after it.
  std::optional<Seconds> last_scheduled;
  bool suspended = false;
  std::vector<RunRecord> active;
  std::deque<RunRecord> history;  // oldest first
  uint64_t missed_total = 0;
  uint64_t skipped_total = 0;

  nlohmann::json ToJson() const;
  // Throws std::runtime_error naming the field on malformed input.
  static ScheduleState FromJson(const nlohmann::json& j);
};

struct Decision {
  enum class Kind { kStart, kSkipForbid, kMissed };
  Kind kind;
  RunRecord run;
};

// Pure schedule logic: the controller calls Due() with the current time (whenever it wakes, e.g.
// at NextWake()), starts the runs it is told to and reports their end with Finished(). Nothing
// here sleeps or reads a clock, so every case can be tested exactly.
class Scheduler {
 public:
  Scheduler(std::string name, CronSchedule cron, SchedulePolicy policy);

  // Decides about every due time in (last handled, now]. Of several due times only the latest
  // can start (one catch-up run after downtime); the earlier ones are recorded as missed, and so
  // is the latest when it is older than the starting deadline. Under Forbid a due run is skipped
  // while another is active. A suspended schedule decides nothing.
  std::vector<Decision> Due(Seconds now, ScheduleState& state) const;

  // A run started by Due() has ended. Unknown ids are ignored (a run can be finished twice when a
  // restarted controller recovers it).
  void Finished(const std::string& run_id, Seconds now, bool succeeded, ScheduleState& state) const;

  // Pause: nothing starts until Resume. Due times that pass while suspended are not caught up on
  // resume: pausing a chaos schedule means "do not run now", so resuming starts from `now`.
  void Suspend(ScheduleState& state) const;
  void Resume(Seconds now, ScheduleState& state) const;

  // When Due() has something to decide next (nullopt when suspended or never).
  std::optional<Seconds> NextWake(const ScheduleState& state) const;

  const std::string& name() const { return name_; }
  const SchedulePolicy& policy() const { return policy_; }

 private:
  void Record(RunRecord r, ScheduleState& state) const;

  std::string name_;
  CronSchedule cron_;
  SchedulePolicy policy_;
};

}  // namespace faultline::controller
