#include "agent/fault_manager.h"

#include <unistd.h>

#include <random>
#include <stdexcept>

#include "faults/core/duration.h"

namespace faultline::agent {
namespace {

using Clock = faults::DeadlineTimer::Clock;

void SetNow(google::protobuf::Timestamp* ts) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  ts->set_seconds(ns / 1'000'000'000);
  ts->set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
}

// Steady-clock deadlines shown as wall-clock timestamps.
void SetFromSteady(Clock::time_point when, google::protobuf::Timestamp* ts) {
  auto wall = std::chrono::system_clock::now() +
              std::chrono::duration_cast<std::chrono::system_clock::duration>(when - Clock::now());
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count();
  ts->set_seconds(ns / 1'000'000'000);
  ts->set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
}

v1::JournalRecord Record(v1::JournalRecord::Op op, const std::string& id,
                         const std::string& experiment) {
  v1::JournalRecord r;
  r.set_op(op);
  r.set_fault_id(id);
  r.set_experiment_id(experiment);
  return r;
}

}  // namespace

FaultManager::FaultManager(const faults::Registry& registry, faults::FaultContext ctx,
                           faults::Journal& journal, Options options)
    : registry_(registry), ctx_(std::move(ctx)), journal_(journal), options_(options) {
  // Ids must not repeat across agent restarts (the controller may still hold old ones).
  std::random_device rd;
  id_counter_ = (static_cast<uint64_t>(rd()) << 20) ^ static_cast<uint64_t>(::getpid());
  timer_ =
      std::make_unique<faults::DeadlineTimer>([this](const std::string& id) { OnDeadline(id); });
}

FaultManager::~FaultManager() {
  timer_.reset();  // no new deadline reverts after this
  JoinDeadlineReverts();
}

std::string FaultManager::NewId() {
  static constexpr char kAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  uint64_t v = ++id_counter_ * 0x9e3779b97f4a7c15ULL;
  std::string id = "f-";
  for (int i = 0; i < 10; ++i) {
    id += kAlphabet[v % 36];
    v /= 36;
  }
  return id;
}

std::vector<std::string> FaultManager::Startup() {
  std::vector<std::string> done;
  std::vector<v1::JournalRecord> still_outstanding;
  for (const auto& rec : faults::Journal::Outstanding(journal_.replayed())) {
    std::string family = faults::FamilyOf(rec.spec());
    const auto* factory = registry_.Find(family);
    if (factory == nullptr) {
      done.push_back("fault " + rec.fault_id() + ": family \"" + family +
                     "\" is not served by this agent; cannot revert");
      ++metrics_.revert_failures;
      still_outstanding.push_back(rec);
      continue;
    }
    journal_.Append(Record(v1::JournalRecord::INTENT_REVERT, rec.fault_id(), rec.experiment_id()));
    try {
      auto fault = factory->Restore(rec.spec(), rec.state(), ctx_);
      fault->Revert();
      journal_.Append(Record(v1::JournalRecord::REVERTED, rec.fault_id(), rec.experiment_id()));
      ++metrics_.startup_reverts;
      ++metrics_.reverts;
      done.push_back("reverted " + rec.fault_id() +
                     " left by a previous agent: " + fault->Describe());
    } catch (const std::exception& e) {
      auto r = Record(v1::JournalRecord::REVERT_FAILED, rec.fault_id(), rec.experiment_id());
      r.set_error(e.what());
      journal_.Append(r);
      ++metrics_.revert_failures;
      still_outstanding.push_back(rec);
      done.push_back("failed to revert " + rec.fault_id() + ": " + e.what());
    }
  }
  for (const auto& [name, factory] : registry_.factories()) {
    for (auto& line : factory->Sweep(ctx_)) done.push_back(name + " sweep: " + line);
  }
  // Keep only what could not be reverted, so the next start tries again.
  journal_.Compact(still_outstanding);
  return done;
}

v1::FaultStatus FaultManager::Snapshot(const faults::Fault& fault, v1::FaultStatus status) {
  status.set_description(fault.Describe());
  status.mutable_counters()->clear();
  for (const auto& [k, v] : fault.Observe()) (*status.mutable_counters())[k] = v;
  return status;
}

void FaultManager::RememberEnded(const v1::FaultStatus& status) {
  ended_.push_front(status);
  if (ended_.size() > options_.ended_history) ended_.pop_back();
}

void FaultManager::Reschedule(const std::string& id, Entry& e) {
  auto when = e.lease_until;
  if (e.ends_at && *e.ends_at < when) when = *e.ends_at;
  SetFromSteady(e.lease_until, e.status.mutable_lease_expires_at());
  timer_->Set(id, when);
  e.fault->Lease(when);
}

v1::FaultStatus FaultManager::Inject(const v1::InjectRequest& request) {
  const auto& spec = request.spec();
  const std::string& exp = request.experiment_id();
  auto lease = faults::FromProto(request.lease());
  faults::FieldErrors errors = registry_.Validate(spec);
  if (lease.count() < 0) errors.push_back({"lease", "must not be negative"});
  if (!errors.empty()) throw faults::ValidationError(std::move(errors));
  std::shared_ptr<faults::Fault> fault = registry_.Find(faults::FamilyOf(spec))->Create(spec, ctx_);
  fault->Prepare();  // resolves targets; throws FaultError with the reason

  v1::FaultStatus status;
  status.set_kind(fault->Kind());
  *status.mutable_spec() = spec;
  status.set_experiment_id(exp);
  status.set_description(fault->Describe());
  if (request.dry_run()) return status;

  Lock lock(mu_);
  std::string id = NewId();
  status.set_id(id);
  auto intent = Record(v1::JournalRecord::INTENT_APPLY, id, exp);
  *intent.mutable_spec() = spec;
  intent.set_state(fault->State());
  journal_.Append(intent);
  {
    Entry e;
    e.fault = fault;
    e.status = status;
    e.phase = Entry::Phase::kApplying;
    active_.emplace(id, std::move(e));
  }
  lock.unlock();
  // The lease the fault will get, told before Apply: a fault whose effect lives outside the
  // agent must not be left without an end if the agent dies before Apply returns.
  {
    auto duration = faults::FromProto(spec.duration());
    auto first = lease.count() > 0      ? lease
                 : duration.count() > 0 ? duration
                                        : options_.default_lease;
    if (duration.count() > 0) first = std::min(first, duration);
    fault->Lease(Clock::now() + first);
  }
  std::optional<std::string> failure;
  try {
    fault->Apply();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  lock.lock();
  if (failure) throw faults::FaultError(UndoFailedApply(lock, id, *fault, exp, *failure));
  auto applied = Record(v1::JournalRecord::APPLIED, id, exp);
  applied.set_state(fault->State());
  journal_.Append(applied);
  ++metrics_.injections;
  Entry& e = active_.at(id);
  if (fault->OneShot()) {
    // Nothing stays applied: close it in the journal and report it as done.
    journal_.Append(Record(v1::JournalRecord::REVERTED, id, exp));
    status = Snapshot(*fault, status);
    status.set_state(v1::FaultStatus::COMPLETED);
    status.set_revert_reason("completed");
    SetNow(status.mutable_applied_at());
    *status.mutable_reverted_at() = status.applied_at();
    RememberEnded(status);
    active_.erase(id);
    settled_.notify_all();
    return status;
  }

  auto now = Clock::now();
  auto duration = faults::FromProto(spec.duration());
  if (duration.count() > 0) {
    e.ends_at = now + duration;
    SetFromSteady(*e.ends_at, e.status.mutable_ends_at());
  }
  // Every fault has a lease: given, or the duration, or the agent's default.
  if (lease.count() == 0) lease = duration.count() > 0 ? duration : options_.default_lease;
  e.lease_until = now + lease;
  e.status.set_state(v1::FaultStatus::ACTIVE);
  SetNow(e.status.mutable_applied_at());
  e.phase = Entry::Phase::kActive;
  Reschedule(id, e);
  settled_.notify_all();
  if (!e.revert_when_applied.empty()) {
    // Recovered while it was being applied: it ends now, and the answer says so. (An entry in
    // kActive always yields a status.)
    std::string reason = e.revert_when_applied;
    return RevertEntry(lock, id, reason).value();
  }
  return Snapshot(e);
}

std::string FaultManager::UndoFailedApply(Lock& lock, const std::string& id, faults::Fault& fault,
                                          const std::string& experiment, std::string why) {
  // Apply may have done part of its work: undo it before reporting the failure, so nothing
  // stays half-applied. The entry stays in kApplying meanwhile, so others keep waiting.
  lock.unlock();
  std::optional<std::string> undo_error;
  try {
    fault.Revert();
  } catch (const std::exception& re) {
    undo_error = re.what();
  }
  lock.lock();
  if (!undo_error) {
    journal_.Append(Record(v1::JournalRecord::REVERTED, id, experiment));
  } else {
    auto r = Record(v1::JournalRecord::REVERT_FAILED, id, experiment);
    r.set_error(*undo_error);
    journal_.Append(r);
    ++metrics_.revert_failures;
    why += " (and undoing it failed: " + *undo_error + ")";
  }
  ++metrics_.injection_failures;
  active_.erase(id);
  settled_.notify_all();
  return why;
}

std::vector<v1::FaultStatus> FaultManager::Renew(const v1::RenewRequest& request) {
  auto lease = faults::FromProto(request.lease());
  if (lease.count() <= 0) {
    throw faults::ValidationError("lease", "must be a positive duration");
  }
  Lock lock(mu_);
  std::vector<std::string> ids(request.fault_ids().begin(), request.fault_ids().end());
  if (!request.experiment_id().empty()) {
    for (const auto& [id, e] : active_) {
      if (e.status.experiment_id() == request.experiment_id()) ids.push_back(id);
    }
  }
  std::vector<v1::FaultStatus> out;
  for (const auto& id : ids) {
    auto it = active_.find(id);
    if (it == active_.end()) throw std::out_of_range("no active fault " + id);
    // A fault still being applied gets its lease when Apply returns; one being reverted is
    // ending anyway.
    if (it->second.phase == Entry::Phase::kActive) {
      it->second.lease_until = Clock::now() + lease;
      Reschedule(id, it->second);
    }
    out.push_back(Snapshot(it->second));
  }
  return out;
}

std::optional<v1::FaultStatus> FaultManager::Ended(const std::string& id) const {
  for (const auto& s : ended_) {
    if (s.id() == id) return s;
  }
  return std::nullopt;
}

std::optional<v1::FaultStatus> FaultManager::RevertEntry(Lock& lock, const std::string& id,
                                                         const std::string& reason) {
  auto it = active_.find(id);
  while (it != active_.end() && it->second.phase != Entry::Phase::kActive) {
    if (it->second.phase == Entry::Phase::kApplying && it->second.revert_when_applied.empty()) {
      it->second.revert_when_applied = reason;
    }
    settled_.wait(lock);
    it = active_.find(id);
  }
  // Reverted by the thread that applied it (or another recover), or its Apply failed.
  if (it == active_.end()) return Ended(id);

  Entry& e = it->second;
  e.phase = Entry::Phase::kReverting;
  timer_->Cancel(id);
  const std::string exp = e.status.experiment_id();
  journal_.Append(Record(v1::JournalRecord::INTENT_REVERT, id, exp));
  std::shared_ptr<faults::Fault> fault = e.fault;
  lock.unlock();
  std::optional<std::string> error;
  try {
    fault->Revert();
  } catch (const std::exception& ex) {
    error = ex.what();
  }
  lock.lock();
  Entry& after = active_.at(id);  // nobody erases an entry another thread is reverting
  v1::FaultStatus s = Snapshot(*fault, after.status);
  if (!error) {
    journal_.Append(Record(v1::JournalRecord::REVERTED, id, exp));
    ++metrics_.reverts;
    s.set_state(v1::FaultStatus::REVERTED);
  } else {
    auto r = Record(v1::JournalRecord::REVERT_FAILED, id, exp);
    r.set_error(*error);
    journal_.Append(r);
    ++metrics_.revert_failures;
    s.set_state(v1::FaultStatus::FAILED);
    s.set_error("revert failed: " + *error);
  }
  s.set_revert_reason(reason);
  SetNow(s.mutable_reverted_at());
  if (error) {
    // Keep it listed and retry soon: a fault must not silently outlive its end.
    after.status.set_error(s.error());
    after.phase = Entry::Phase::kActive;
    timer_->Set(id, Clock::now() + std::chrono::seconds(1));
  } else {
    active_.erase(id);
    RememberEnded(s);
  }
  settled_.notify_all();
  return s;
}

void FaultManager::OnDeadline(const std::string& id) {
  // On the timer's thread: hand the revert to its own thread, so a slow revert (a restart
  // waiting for readiness) does not delay other faults' deadlines.
  std::lock_guard lock(mu_);
  std::erase_if(deadline_reverts_, [](const std::future<void>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  });
  deadline_reverts_.push_back(std::async(std::launch::async, [this, id] { RevertAtDeadline(id); }));
}

void FaultManager::RevertAtDeadline(const std::string& id) {
  Lock lock(mu_);
  auto it = active_.find(id);
  // Gone, or another thread is applying (no deadline is set before Apply returns) or
  // reverting it.
  if (it == active_.end() || it->second.phase != Entry::Phase::kActive) return;
  auto now = Clock::now();
  std::string reason = "lease";
  if (it->second.ends_at && *it->second.ends_at <= now) {
    reason = "duration";
  } else if (it->second.lease_until <= now) {
    ++metrics_.lease_expiries;
  } else {
    reason = "retry";
  }
  RevertEntry(lock, id, reason);
}

std::vector<v1::FaultStatus> FaultManager::Recover(const v1::RecoverRequest& request) {
  Lock lock(mu_);
  std::vector<std::string> ids;
  switch (request.which_case()) {
    case v1::RecoverRequest::kFaultId:
      if (!active_.contains(request.fault_id())) {
        // Revert of a reverted fault succeeds: report what we know.
        if (auto s = Ended(request.fault_id())) return {*s};
        throw std::out_of_range("no fault " + request.fault_id());
      }
      ids.push_back(request.fault_id());
      break;
    case v1::RecoverRequest::kExperimentId:
      for (const auto& [id, e] : active_) {
        if (e.status.experiment_id() == request.experiment_id()) ids.push_back(id);
      }
      break;
    case v1::RecoverRequest::kAll:
      for (const auto& [id, e] : active_) ids.push_back(id);
      break;
    default:
      throw faults::ValidationError("which", "give a fault id, an experiment id, or all");
  }
  std::vector<v1::FaultStatus> out;
  for (const auto& id : ids) {
    if (auto s = RevertEntry(lock, id, "recover")) out.push_back(*s);
  }
  return out;
}

std::vector<v1::FaultStatus> FaultManager::List(bool include_ended) const {
  std::lock_guard lock(mu_);
  std::vector<v1::FaultStatus> out;
  for (const auto& [id, e] : active_) out.push_back(Snapshot(e));
  if (include_ended) out.insert(out.end(), ended_.begin(), ended_.end());
  return out;
}

void FaultManager::Shutdown() {
  {
    Lock lock(mu_);
    std::vector<std::string> ids;
    for (const auto& [id, e] : active_) ids.push_back(id);
    for (const auto& id : ids) {
      auto s = RevertEntry(lock, id, "shutdown");
      // A revert that failed at shutdown stays in the journal for the next start.
      if (s && s->state() == v1::FaultStatus::FAILED) {
        timer_->Cancel(id);
        active_.erase(id);
      }
    }
  }
  JoinDeadlineReverts();
}

void FaultManager::JoinDeadlineReverts() {
  std::vector<std::future<void>> running;
  {
    std::lock_guard lock(mu_);
    running.swap(deadline_reverts_);
  }
  for (auto& f : running) f.wait();
}

size_t FaultManager::active() const {
  std::lock_guard lock(mu_);
  return active_.size();
}

}  // namespace faultline::agent
