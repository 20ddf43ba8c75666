#include "controller/schedule/scheduler.h"

#include <algorithm>
#include <stdexcept>

namespace faultline::controller {

namespace {

using namespace std::chrono;

constexpr size_t kDefaultHistory = 10;
// Enumerating due times after a long outage is bounded; beyond this many the rest are counted as
// missed in one go (an `@every 1s` schedule down for a day must not take a million steps).
constexpr uint64_t kMaxEnumerated = 10000;

int64_t Unix(Seconds t) { return t.time_since_epoch().count(); }
Seconds FromUnix(int64_t s) { return Seconds{seconds(s)}; }

}  // namespace

SchedulePolicy SchedulePolicy::FromProto(const v1::Schedule& s) {
  SchedulePolicy p;
  p.concurrency =
      s.concurrency_policy() == v1::Schedule::ALLOW ? Concurrency::kAllow : Concurrency::kForbid;
  p.starting_deadline = seconds(std::max<int64_t>(0, s.starting_deadline_seconds()));
  p.history_limit = s.history_limit() == 0 ? kDefaultHistory : s.history_limit();
  return p;
}

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kRunning:
      return "running";
    case Outcome::kSucceeded:
      return "succeeded";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kSkippedForbid:
      return "skipped-forbid";
    case Outcome::kMissed:
      return "missed";
  }
  return "unknown";
}

Scheduler::Scheduler(std::string name, CronSchedule cron, SchedulePolicy policy)
    : name_(std::move(name)), cron_(std::move(cron)), policy_(policy) {
  if (policy_.history_limit == 0) policy_.history_limit = kDefaultHistory;
}

void Scheduler::Record(RunRecord r, ScheduleState& state) const {
  state.history.push_back(std::move(r));
  while (state.history.size() > policy_.history_limit) state.history.pop_front();
}

std::vector<Decision> Scheduler::Due(Seconds now, ScheduleState& state) const {
  std::vector<Decision> out;
  if (state.suspended) return out;
  const Seconds from = state.last_scheduled.value_or(state.created);
  // Collect the due times in (from, now]: the earliest and the latest, and how many.
  std::optional<Seconds> first;
  std::optional<Seconds> last;
  uint64_t count = 0;
  for (auto t = cron_.Next(from); t && *t <= now; t = cron_.Next(*t)) {
    if (!first) first = t;
    last = t;
    if (++count >= kMaxEnumerated) {
      // Jump to the latest due time at or before now: arithmetic for @every, a plain walk for
      // cron (whose finest period is a second).
      if (cron_.every().count() > 0) {
        auto steps = (now - *t) / cron_.every();
        count += static_cast<uint64_t>(steps);
        last = *t + steps * cron_.every();
      } else {
        for (auto u = cron_.Next(*t); u && *u <= now; u = cron_.Next(*u)) {
          last = u;
          ++count;
        }
      }
      break;
    }
  }
  if (!last) return out;
  state.last_scheduled = *last;
  if (count > 1) {
    // Only one catch-up: every due time before the latest passed unserved.
    RunRecord missed;
    missed.id = name_ + "-" + std::to_string(Unix(*first));
    missed.scheduled = *first;
    missed.decided = now;
    missed.finished = now;
    missed.outcome = Outcome::kMissed;
    missed.count = count - 1;
    state.missed_total += count - 1;
    out.push_back({Decision::Kind::kMissed, missed});
    Record(std::move(missed), state);
  }
  RunRecord run;
  run.id = name_ + "-" + std::to_string(Unix(*last));
  run.scheduled = *last;
  run.decided = now;
  if (policy_.starting_deadline.count() > 0 && now - *last > policy_.starting_deadline) {
    run.outcome = Outcome::kMissed;
    run.finished = now;
    state.missed_total += 1;
    out.push_back({Decision::Kind::kMissed, run});
    Record(std::move(run), state);
  } else if (policy_.concurrency == SchedulePolicy::Concurrency::kForbid && !state.active.empty()) {
    run.outcome = Outcome::kSkippedForbid;
    run.finished = now;
    state.skipped_total += 1;
    out.push_back({Decision::Kind::kSkipForbid, run});
    Record(std::move(run), state);
  } else {
    run.outcome = Outcome::kRunning;
    out.push_back({Decision::Kind::kStart, run});
    state.active.push_back(std::move(run));
  }
  return out;
}

void Scheduler::Finished(const std::string& run_id, Seconds now, bool succeeded,
                         ScheduleState& state) const {
  auto it = std::find_if(state.active.begin(), state.active.end(),
                         [&](const RunRecord& r) { return r.id == run_id; });
  if (it == state.active.end()) return;
  RunRecord r = std::move(*it);
  state.active.erase(it);
  r.finished = now;
  r.outcome = succeeded ? Outcome::kSucceeded : Outcome::kFailed;
  Record(std::move(r), state);
}

void Scheduler::Suspend(ScheduleState& state) const { state.suspended = true; }

void Scheduler::Resume(Seconds now, ScheduleState& state) const {
  if (!state.suspended) return;
  state.suspended = false;
  state.last_scheduled = std::max(now, state.last_scheduled.value_or(state.created));
}

std::optional<Seconds> Scheduler::NextWake(const ScheduleState& state) const {
  if (state.suspended) return std::nullopt;
  return cron_.Next(state.last_scheduled.value_or(state.created));
}

// JSON: times are Unix seconds (UTC), outcomes by name.
namespace {

nlohmann::json RecordJson(const RunRecord& r) {
  nlohmann::json j = {{"id", r.id},
                      {"scheduled", Unix(r.scheduled)},
                      {"decided", Unix(r.decided)},
                      {"outcome", OutcomeName(r.outcome)},
                      {"count", r.count}};
  if (r.finished) j["finished"] = Unix(*r.finished);
  return j;
}

template <typename T>
T Field(const nlohmann::json& j, const char* name, const std::string& where) {
  if (!j.is_object() || !j.contains(name)) {
    throw std::runtime_error("schedule state: " + where + name + ": missing");
  }
  try {
    return j.at(name).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("schedule state: " + where + name + ": " + e.what());
  }
}

RunRecord RecordFromJson(const nlohmann::json& j, const std::string& where) {
  RunRecord r;
  r.id = Field<std::string>(j, "id", where);
  r.scheduled = FromUnix(Field<int64_t>(j, "scheduled", where));
  r.decided = FromUnix(Field<int64_t>(j, "decided", where));
  r.count = Field<uint64_t>(j, "count", where);
  if (j.contains("finished")) r.finished = FromUnix(Field<int64_t>(j, "finished", where));
  const auto name = Field<std::string>(j, "outcome", where);
  bool known = false;
  for (auto o : {Outcome::kRunning, Outcome::kSucceeded, Outcome::kFailed, Outcome::kSkippedForbid,
                 Outcome::kMissed}) {
    if (name == OutcomeName(o)) {
      r.outcome = o;
      known = true;
    }
  }
  if (!known)
    throw std::runtime_error("schedule state: " + where + "outcome: unknown '" + name + "'");
  return r;
}

}  // namespace

nlohmann::json ScheduleState::ToJson() const {
  nlohmann::json j = {{"version", 1},
                      {"created", Unix(created)},
                      {"suspended", suspended},
                      {"missed_total", missed_total},
                      {"skipped_total", skipped_total},
                      {"active", nlohmann::json::array()},
                      {"history", nlohmann::json::array()}};
  if (last_scheduled) j["last_scheduled"] = Unix(*last_scheduled);
  for (const auto& r : active) j["active"].push_back(RecordJson(r));
  for (const auto& r : history) j["history"].push_back(RecordJson(r));
  return j;
}

ScheduleState ScheduleState::FromJson(const nlohmann::json& j) {
  if (Field<int>(j, "version", "") != 1) {
    throw std::runtime_error("schedule state: version: unsupported (expected 1)");
  }
  ScheduleState s;
  s.created = FromUnix(Field<int64_t>(j, "created", ""));
  s.suspended = Field<bool>(j, "suspended", "");
  s.missed_total = Field<uint64_t>(j, "missed_total", "");
  s.skipped_total = Field<uint64_t>(j, "skipped_total", "");
  if (j.contains("last_scheduled"))
    s.last_scheduled = FromUnix(Field<int64_t>(j, "last_scheduled", ""));
  for (const char* list : {"active", "history"}) {
    if (!j.contains(list))
      throw std::runtime_error(std::string("schedule state: ") + list + ": missing");
    const auto& arr = j.at(list);
    if (!arr.is_array())
      throw std::runtime_error(std::string("schedule state: ") + list + ": not a list");
    for (size_t i = 0; i < arr.size(); ++i) {
      auto r = RecordFromJson(arr[i], std::string(list) + "[" + std::to_string(i) + "].");
      if (std::string(list) == "active") {
        s.active.push_back(std::move(r));
      } else {
        s.history.push_back(std::move(r));
      }
    }
  }
  return s;
}

}  // namespace faultline::controller
