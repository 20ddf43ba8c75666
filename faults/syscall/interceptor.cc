#include "faults/syscall/interceptor.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <queue>

#include "faults/core/errors.h"

namespace faultline::faults::syscalls {

SyscallInterceptor::SyscallInterceptor(sys::UniqueFd listener, std::vector<std::string> intercepted)
    : SyscallInterceptor(std::move(listener), sys::UniqueFd(), std::move(intercepted)) {}

SyscallInterceptor::SyscallInterceptor(sys::UniqueFd listener, sys::UniqueFd keeper,
                                       std::vector<std::string> intercepted)
    : listener_(std::move(listener)), keeper_(std::move(keeper)), names_(std::move(intercepted)) {
  for (const auto& n : names_) {
    if (auto nr = ResolveSyscall(n)) numbers_.insert(*nr);
  }
  // libseccomp refuses its notify calls (EOPNOTSUPP) until it has probed the kernel's API
  // level, which only happens on demand; this process did not install the filter itself.
  if (seccomp_api_get() < 5) {
    throw FaultError("this kernel or libseccomp lacks seccomp user notification (API level " +
                     std::to_string(seccomp_api_get()) + " < 5)");
  }
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) ThrowErrno("eventfd");
  thread_ = std::thread([this] { Loop(); });
}

SyscallInterceptor::~SyscallInterceptor() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  Wake();
  thread_.join();
}

void SyscallInterceptor::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

void SyscallInterceptor::TellKeeper(char op, uint64_t id) {
  if (!keeper_) return;
  char msg[9];
  msg[0] = op;
  std::memcpy(msg + 1, &id, sizeof id);
  (void)!::send(keeper_.get(), msg, sizeof msg, MSG_NOSIGNAL);
}

void SyscallInterceptor::Arm(SyscallRule rule) {
  std::lock_guard lock(mu_);
  Rng rng = Rng(rule.seed).Fork("syscall.percent");
  for (auto& a : rules_) {
    if (a.rule.id == rule.id) {
      a.rule = std::move(rule);
      return;
    }
  }
  rules_.push_back({std::move(rule), rng, {}});
}

bool SyscallInterceptor::Disarm(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it =
      std::find_if(rules_.begin(), rules_.end(), [&](const Armed& a) { return a.rule.id == id; });
  if (it == rules_.end()) return false;
  rules_.erase(it);
  return true;
}

std::optional<RuleCounters> SyscallInterceptor::Counters(const std::string& id) const {
  std::lock_guard lock(mu_);
  for (const auto& a : rules_) {
    if (a.rule.id == id) return a.counters;
  }
  return std::nullopt;
}

InterceptorCounters SyscallInterceptor::Totals() const {
  std::lock_guard lock(mu_);
  return totals_;
}

void SyscallInterceptor::Answer(uint64_t id, int error) {
  seccomp_notif_resp resp{};
  resp.id = id;
  resp.val = 0;
  resp.error = error == 0 ? 0 : -error;
  resp.flags = error == 0 ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
  int rc = seccomp_notify_respond(listener_.get(), &resp);
  std::lock_guard lock(mu_);
  if (rc != 0) {
    // ENOENT: the call is gone (the caller was killed); nothing else can go wrong here that
    // waiting would fix.
    ++totals_.interrupted;
  } else if (error != 0) {
    ++totals_.failed;
  } else {
    ++totals_.continued;
  }
}

void SyscallInterceptor::Loop() {
  std::priority_queue<Held, std::vector<Held>, std::greater<>> held;
  bool listening = true;
  while (true) {
    int timeout = -1;
    if (!held.empty()) {
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(held.top().due -
                                                               std::chrono::steady_clock::now());
      timeout = static_cast<int>(std::max<int64_t>(0, wait.count()));
    }
    pollfd fds[2] = {{wake_.get(), POLLIN, 0}, {listening ? listener_.get() : -1, POLLIN, 0}};
    int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && (fds[0].revents & POLLIN) != 0) {
      uint64_t v;
      (void)!::read(wake_.get(), &v, sizeof v);
      std::lock_guard lock(mu_);
      if (stop_) break;
    }
    if (n > 0 && (fds[1].revents & POLLIN) != 0) {
      seccomp_notif req;
      memset(&req, 0, sizeof req);
      int rc = seccomp_notify_receive(listener_.get(), &req);
      if (rc != 0 && rc != -ENOENT && rc != -EINTR) {
        // Not a vanished caller: the listener itself is unusable. Stop polling it rather than spin.
        listening = false;
        std::lock_guard lock(mu_);
        totals_.target_gone = true;
      }
      if (rc == 0 && keeper_ && reported_++ % 64 == 0) {
        // Lets the keeper find the calls in flight if this agent dies (see launch.h).
        TellKeeper('R', req.id);
      }
      if (rc == 0) {
        int error = 0;
        std::chrono::nanoseconds delay{0};
        {
          std::lock_guard lock(mu_);
          ++totals_.notified;
          for (auto& a : rules_) {
            if (a.rule.syscalls.count(req.data.nr) == 0) continue;
            ++a.counters.matched;
            if (a.rule.max_count != 0 &&
                static_cast<uint64_t>(a.counters.affected) >= a.rule.max_count) {
              continue;
            }
            if (a.rule.percent < 100 && !a.rng.Percent(a.rule.percent)) continue;
            ++a.counters.affected;
            error = a.rule.error;
            delay = a.rule.delay;
            break;
          }
          if (delay.count() > 0) {
            ++totals_.delayed;
            ++totals_.pending;
          }
        }
        if (delay.count() > 0) {
          TellKeeper('H', req.id);
          held.push({std::chrono::steady_clock::now() + delay, req.id, error});
        } else {
          Answer(req.id, error);
        }
      }
    } else if (n > 0 && (fds[1].revents & (POLLHUP | POLLERR)) != 0) {
      // Every task of the process has exited: nothing more will arrive.
      listening = false;
      std::lock_guard lock(mu_);
      totals_.target_gone = true;
    }
    auto now = std::chrono::steady_clock::now();
    while (!held.empty() && held.top().due <= now) {
      Held h = held.top();
      held.pop();
      {
        std::lock_guard lock(mu_);
        --totals_.pending;
      }
      Answer(h.id, h.error);
      TellKeeper('D', h.id);
    }
  }
  // Shutting down: answer what is held now rather than leave the calls to fail with ENOSYS
  // when the listener closes.
  while (!held.empty()) {
    Answer(held.top().id, held.top().error);
    held.pop();
  }
  std::lock_guard lock(mu_);
  totals_.pending = 0;
}

}  // namespace faultline::faults::syscalls
