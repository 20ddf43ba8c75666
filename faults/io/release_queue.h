#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "faults/core/lateness.h"
#include "faults/sys/realtime.h"
#include "faults/sys/unique_fd.h"

namespace faultline::faults::io {

// Holds delayed FUSE replies and sends each at its deadline from one thread of its own, so a
// delayed op occupies neither a FUSE worker nor any lock while it waits (fuse_reply_* may be
// called from any thread).
//
// Exactness under host load: the thread runs SCHED_FIFO where permitted (sys::MakeThreadRealtime;
// otherwise it says why in scheduling()), sleeps on an absolute CLOCK_MONOTONIC timerfd, and the
// release path — from the timer firing to the last reply sent — takes no lock and allocates
// nothing: FUSE workers hand replies over through a lock-free list, the thread keeps them in a
// heap whose storage is reserved up front, and the finished replies (their closures own buffers)
// are freed only once the thread is idle or the next deadline is far enough away.
// How late each reply went out is recorded into the Lateness objects the caller names.
class ReleaseQueue {
 public:
  struct Options {
    // Wake this long before a deadline and spin the rest. 0: the timer alone (bench/RESULTS.md
    // measures whether spinning pays; on the hosts measured it did not).
    int64_t spin_ns = 0;
    int priority = sys::kReleasePriority;
  };
  static constexpr size_t kMaxLateness = 4;

  ReleaseQueue();
  explicit ReleaseQueue(Options options);
  ~ReleaseQueue();
  ReleaseQueue(const ReleaseQueue&) = delete;
  ReleaseQueue& operator=(const ReleaseQueue&) = delete;

  // Sends `reply` at `due_ns` (CLOCK_MONOTONIC) and records its lateness into each of `stats`
  // (nullptr entries are skipped). `keep` is held until the reply is done: whatever `stats`
  // point into. After Stop(), replies at once.
  void Add(int64_t due_ns, std::function<void()> reply,
           std::array<Lateness*, kMaxLateness> stats = {}, std::shared_ptr<const void> keep = {});

  // Sends every held reply now and ends the thread. Idempotent.
  void Stop();

  // How the release thread is scheduled (set before the constructor returns).
  const sys::ThreadScheduling& scheduling() const { return scheduling_; }
  // How late releases were, over the queue's life (every reply, whoever asked).
  const Lateness& lateness() const { return all_; }

 private:
  struct Item {
    int64_t due = 0;
    std::function<void()> reply;
    std::array<Lateness*, kMaxLateness> stats{};
    std::shared_ptr<const void> keep;
    Item* next = nullptr;
  };
  void Run(std::promise<void>* started);
  void Release(Item* item);
  void Wake();

  Options options_;
  sys::ThreadScheduling scheduling_;
  Lateness all_;
  std::atomic<Item*> inbox_{nullptr};
  std::atomic<int> adding_{0};
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  bool stopped_ = false;
  sys::UniqueFd wake_;
  std::thread thread_;
};

}  // namespace faultline::faults::io
