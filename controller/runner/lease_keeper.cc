#include "controller/runner/lease_keeper.h"

#include <algorithm>

namespace faultline::controller {

LeaseKeeper::LeaseKeeper(const Clock& clock, std::chrono::milliseconds lease,
                         std::function<bool()> renew, std::chrono::milliseconds retry)
    : clock_(clock),
      lease_(lease),
      interval_(std::max<std::chrono::milliseconds>(lease / 3, std::chrono::milliseconds(1))),
      retry_(std::min(retry, interval_)),
      renew_(std::move(renew)) {
  last_success_ = clock_.Now();
  next_ = last_success_ + interval_;
}

bool LeaseKeeper::Tick() {
  std::lock_guard lock(mu_);
  auto now = clock_.Now();
  if (now < next_) return false;
  ++renewals_;
  if (renew_()) {
    last_success_ = clock_.Now();
    next_ = last_success_ + interval_;
  } else {
    ++failures_;
    next_ = clock_.Now() + retry_;
  }
  return true;
}

std::chrono::steady_clock::time_point LeaseKeeper::NextDue() const {
  std::lock_guard lock(mu_);
  return next_;
}

}  // namespace faultline::controller
