#pragma once

#include <cstddef>
#include <cstdint>
#include <queue>
#include <set>
#include <vector>

namespace faultline::faults::net {

// Packets held by the NFQUEUE backend, keyed by release time. Ties release in arrival order.
class TimerHeap {
 public:
  void Push(int64_t due_ns, uint32_t id) {
    heap_.push({due_ns, seq_++, id});
    held_.insert(id);
  }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  // Release time of the earliest packet; only valid when !empty().
  int64_t next_due() const { return heap_.top().due; }
  // Removes every packet due at or before now; appends their ids in release order.
  void PopDue(int64_t now_ns, std::vector<uint32_t>* out) {
    while (!heap_.empty() && heap_.top().due <= now_ns) {
      out->push_back(heap_.top().id);
      held_.erase(heap_.top().id);
      heap_.pop();
    }
  }
  // Smallest packet id still held, or UINT64_MAX when none is.
  uint64_t min_held() const { return held_.empty() ? UINT64_MAX : *held_.begin(); }

 private:
  struct Item {
    int64_t due;
    uint64_t seq;
    uint32_t id;
    bool operator>(const Item& o) const { return due != o.due ? due > o.due : seq > o.seq; }
  };
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap_;
  std::set<uint32_t> held_;
  uint64_t seq_ = 0;
};

// How to tell the kernel about released packets with as few messages as possible. A batch
// verdict accepts every queued packet with id <= batch_max, so it may only cover ids below the
// smallest id still held; the rest get one verdict each.
struct VerdictPlan {
  uint32_t batch_max = 0;
  bool has_batch = false;
  std::vector<uint32_t> single;
};
inline VerdictPlan PlanVerdicts(std::vector<uint32_t> released, uint64_t min_held) {
  VerdictPlan p;
  for (uint32_t id : released) {
    if (id < min_held) {
      if (!p.has_batch || id > p.batch_max) p.batch_max = id;
      p.has_batch = true;
    } else {
      p.single.push_back(id);
    }
  }
  // A lone packet needs no batch message; keep the output canonical for callers and tests.
  return p;
}

}  // namespace faultline::faults::net
