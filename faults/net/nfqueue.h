#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <thread>

#include "faults/core/lateness.h"
#include "faults/core/rng.h"
#include "faults/net/spec.h"
#include "faults/sys/realtime.h"
#include "faults/sys/unique_fd.h"

struct mnl_socket;

namespace faultline::faults::net {

// What the NFQUEUE backend does to each queued packet.
struct QueueBehaviour {
  std::chrono::nanoseconds delay{0};
  std::chrono::nanoseconds jitter{0};
  bool normal_jitter = false;  // else uniform in [-jitter, +jitter]
  double correlation = 0;      // percent, applies to the jitter and loss random streams
  double loss_percent = 0;
  // Reorder: this percent of packets (the gap-th candidates) go at once, the rest wait `delay`.
  double reorder_percent = 0;
  uint32_t gap = 0;
  uint64_t seed = 0;
  // The release thread wakes this long before a packet's release time and spins the rest
  // (0: the timer alone; bench/RESULTS.md says whether spinning pays).
  int64_t spin_ns = 0;
};

// The user-space half of the NFQUEUE backend: binds one queue (fail-open, GSO kept whole, no
// payload copied), holds packets on a timer heap and releases them by verdict from its own
// thread. Packets left held when it stops are accepted, never dropped.
//
// Exactness under host load: the thread runs SCHED_FIFO where permitted (scheduling() says
// which, and why not), waits on an absolute CLOCK_MONOTONIC timerfd, releases what is due
// before reading new packets, and allocates nothing once its buffers have grown to the traffic
// (storage reserved up front, pooled held-id set). lateness() is how late each release went out.
class PacketQueue {
 public:
  // Sized for etcd: a burst of heartbeats + appends across a few peers fits with room to spare;
  // above this the kernel accepts packets unqueued (fail-open) rather than dropping them.
  static constexpr uint32_t kMaxLen = 16384;

  // Binds the first free queue number in [first, last]. Throws FaultError if none is free.
  PacketQueue(uint16_t first, uint16_t last, QueueBehaviour behaviour);
  ~PacketQueue();
  PacketQueue(const PacketQueue&) = delete;
  PacketQueue& operator=(const PacketQueue&) = delete;

  uint16_t queue_num() const { return queue_; }
  // Starts the worker thread. Call once the queue is bound and before traffic is steered to it.
  void Start();
  // Accepts every held packet, unbinds and joins the thread. Idempotent.
  void Stop();

  struct Stats {
    int64_t received = 0, accepted = 0, dropped = 0, held_now = 0, held_max = 0;
    int64_t verdict_msgs = 0, batch_verdicts = 0, overruns = 0;
  };
  Stats stats() const;
  // How the release thread is scheduled (valid once Start() returned).
  const sys::ThreadScheduling& scheduling() const { return scheduling_; }
  const Lateness& lateness() const { return lateness_; }

 private:
  void Run(std::promise<void>* started);
  bool Drop();
  int64_t HoldNs();

  QueueBehaviour b_;
  Rng rng_;
  mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint16_t queue_ = 0;
  sys::UniqueFd wake_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  double last_loss_ = 0, last_jitter_ = 0;
  uint32_t since_reorder_ = 0;
  sys::ThreadScheduling scheduling_;
  Lateness lateness_;
  struct Counters {
    std::atomic<int64_t> received{0}, accepted{0}, dropped{0}, held_now{0}, held_max{0};
    std::atomic<int64_t> verdict_msgs{0}, batch_verdicts{0}, overruns{0};
  } c_;
};

}  // namespace faultline::faults::net
