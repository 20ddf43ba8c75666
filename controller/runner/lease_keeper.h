#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <string>

namespace faultline::controller {

// Time for the runner, injectable so lease timing is testable without sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point Now() const = 0;
};

class SteadyClock : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::now();
  }
};

// Decides when the faults of a run get their leases renewed. Leases are short (a dead controller's
// faults must lapse soon), so renewals come every `lease / 3`: two renewals can fail in a row
// before any fault lapses. After a failed renewal the next try comes after `retry`, not a full
// interval, while the lease still has time left.
class LeaseKeeper {
 public:
  // `renew` renews every fault of the run and returns false if any agent failed.
  LeaseKeeper(const Clock& clock, std::chrono::milliseconds lease, std::function<bool()> renew,
              std::chrono::milliseconds retry = std::chrono::milliseconds(500));

  // Renews if it is due; returns true if a renewal was attempted.
  bool Tick();
  // When Tick will next act.
  std::chrono::steady_clock::time_point NextDue() const;
  std::chrono::milliseconds interval() const { return interval_; }
  int renewals() const { return renewals_; }
  int failures() const { return failures_; }
  // The last time every agent renewed; the faults' leases run from here.
  std::chrono::steady_clock::time_point last_success() const { return last_success_; }

 private:
  const Clock& clock_;
  std::chrono::milliseconds lease_;
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds retry_;
  std::function<bool()> renew_;
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point next_;
  std::chrono::steady_clock::time_point last_success_;
  int renewals_ = 0;
  int failures_ = 0;
};

}  // namespace faultline::controller
