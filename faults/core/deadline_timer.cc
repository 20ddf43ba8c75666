#include "faults/core/deadline_timer.h"

namespace faultline::faults {

DeadlineTimer::DeadlineTimer(std::function<void(const std::string&)> fire)
    : fire_(std::move(fire)), thread_([this] { Run(); }) {}

DeadlineTimer::~DeadlineTimer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void DeadlineTimer::Set(const std::string& id, Clock::time_point when) {
  {
    std::lock_guard lock(mu_);
    auto it = by_id_.find(id);
    if (it != by_id_.end()) {
      queue_.erase({it->second, id});
      it->second = when;
    } else {
      by_id_.emplace(id, when);
    }
    queue_.emplace(when, id);
  }
  cv_.notify_all();
}

void DeadlineTimer::Cancel(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  queue_.erase({it->second, id});
  by_id_.erase(it);
}

size_t DeadlineTimer::size() const {
  std::lock_guard lock(mu_);
  return by_id_.size();
}

void DeadlineTimer::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (queue_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto [when, id] = *queue_.begin();
    if (Clock::now() < when) {
      cv_.wait_until(lock, when);
      continue;
    }
    queue_.erase(queue_.begin());
    by_id_.erase(id);
    // Fire without the lock so the callback may Set/Cancel.
    lock.unlock();
    fire_(id);
    lock.lock();
  }
}

}  // namespace faultline::faults
