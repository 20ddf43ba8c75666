#include "faults/io/release_queue.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "faults/sys/error.h"

namespace faultline::faults::io {
namespace {

// Room for this many held replies before the heap must grow (an allocation on the release
// thread). FUSE bounds outstanding requests by the callers' threads plus max_background (12 by
// default), so a real workload stays far below it.
constexpr size_t kReserved = 4096;
// Finished replies are freed only when the next deadline is at least this far away.
constexpr int64_t kCleanupGapNs = 2'000'000;

}  // namespace

ReleaseQueue::ReleaseQueue() : ReleaseQueue(Options{}) {}

ReleaseQueue::ReleaseQueue(Options options) : options_(options) {
  wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) sys::ThrowErrno("eventfd for the FUSE release thread");
  std::promise<void> started;
  auto ready = started.get_future();
  thread_ = std::thread([this, &started] { Run(&started); });
  ready.wait();
}

ReleaseQueue::~ReleaseQueue() { Stop(); }

void ReleaseQueue::Wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof one);
}

void ReleaseQueue::Add(int64_t due_ns, std::function<void()> reply,
                       std::array<Lateness*, kMaxLateness> stats,
                       std::shared_ptr<const void> keep) {
  adding_.fetch_add(1);
  if (stopping_.load()) {
    adding_.fetch_sub(1);
    reply();  // shutting down: reply now
    return;
  }
  auto* item = new Item{due_ns, std::move(reply), stats, std::move(keep), nullptr};
  Item* head = inbox_.load(std::memory_order_relaxed);
  do {
    item->next = head;
  } while (!inbox_.compare_exchange_weak(head, item, std::memory_order_release,
                                         std::memory_order_relaxed));
  adding_.fetch_sub(1);
  Wake();
}

void ReleaseQueue::Stop() {
  std::lock_guard lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  // An Add that saw the queue running has pushed by the time adding_ drops to 0, so the thread's
  // last drain (after the join) sees it.
  while (adding_.load() != 0) std::this_thread::yield();
  Wake();
  thread_.join();
  // Anything pushed between the thread's last look and the join.
  for (Item* it = inbox_.exchange(nullptr); it != nullptr;) {
    Item* next = it->next;
    it->reply();
    delete it;
    it = next;
  }
}

void ReleaseQueue::Release(Item* item) {
  // Counted before the reply goes out: whoever the reply wakes may read the counters at once.
  const int64_t late = sys::MonotonicNs() - item->due;
  all_.Record(late);
  for (Lateness* l : item->stats) {
    if (l != nullptr) l->Record(late);
  }
  item->reply();
}

void ReleaseQueue::Run(std::promise<void>* started) {
  pthread_setname_np(pthread_self(), "fl-io-release");
  scheduling_ = sys::MakeThreadRealtime(options_.priority);
  sys::AbsoluteTimer timer;
  std::vector<Item*> heap;
  heap.reserve(kReserved);
  std::vector<Item*> done;  // replied, not yet freed
  done.reserve(kReserved);
  auto later = [](const Item* a, const Item* b) { return a->due > b->due; };
  started->set_value();

  auto drain_inbox = [&] {
    for (Item* it = inbox_.exchange(nullptr, std::memory_order_acquire); it != nullptr;) {
      Item* next = it->next;
      heap.push_back(it);
      std::push_heap(heap.begin(), heap.end(), later);
      it = next;
    }
  };
  auto free_done = [&] {
    for (Item* it : done) delete it;
    done.clear();
  };

  while (true) {
    drain_inbox();
    const bool stop = stopping_.load();
    // The release path: everything due goes out before anything else happens.
    int64_t now = sys::MonotonicNs();
    while (!heap.empty() && (stop || heap.front()->due <= now)) {
      std::pop_heap(heap.begin(), heap.end(), later);
      Item* it = heap.back();
      heap.pop_back();
      Release(it);
      done.push_back(it);
      now = sys::MonotonicNs();
    }
    if (stop) break;
    if (!heap.empty() && options_.spin_ns > 0 && heap.front()->due - now <= options_.spin_ns) {
      sys::SpinUntil(heap.front()->due);
      continue;
    }
    if (!done.empty() && (heap.empty() || heap.front()->due - now > kCleanupGapNs)) free_done();
    if (heap.empty()) {
      timer.Disarm();
    } else {
      timer.Arm(heap.front()->due - options_.spin_ns);
    }
    pollfd p[2] = {{wake_.get(), POLLIN, 0}, {timer.fd(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) continue;
    if (p[0].revents & POLLIN) {
      uint64_t n;
      [[maybe_unused]] ssize_t r = ::read(wake_.get(), &n, sizeof n);
    }
    if (p[1].revents & POLLIN) timer.Drain();
  }
  free_done();
}

}  // namespace faultline::faults::io
