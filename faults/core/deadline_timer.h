#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace faultline::faults {

// Calls `fire(id)` on its own thread when an id's deadline passes. Deadlines are on the steady
// clock so a wall-clock jump never extends or cuts a fault. Used for fault durations and leases.
class DeadlineTimer {
 public:
  using Clock = std::chrono::steady_clock;
  explicit DeadlineTimer(std::function<void(const std::string&)> fire);
  ~DeadlineTimer();
  DeadlineTimer(const DeadlineTimer&) = delete;
  DeadlineTimer& operator=(const DeadlineTimer&) = delete;

  // Sets or moves the deadline of `id`.
  void Set(const std::string& id, Clock::time_point when);
  void Cancel(const std::string& id);
  size_t size() const;

 private:
  void Run();

  std::function<void(const std::string&)> fire_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::pair<Clock::time_point, std::string>> queue_;
  std::map<std::string, Clock::time_point> by_id_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace faultline::faults
