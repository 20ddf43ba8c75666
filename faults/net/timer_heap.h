#pragma once

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <queue>
#include <set>
#include <vector>

namespace faultline::faults::net {

// Packets held by the NFQUEUE backend, keyed by release time. Ties release in arrival order.
// It lives on the release thread, which must not allocate: the heap's storage is reserved up
// front and the held-id set takes its nodes from a pool that recycles them, so once the pool
// has grown to the largest number held at once, pushing and popping touch no allocator.
class TimerHeap {
 public:
  explicit TimerHeap(size_t reserve = 0) : heap_(std::greater<Item>(), Reserved(reserve)) {}
  void Push(int64_t due_ns, uint32_t id) {
    heap_.push({due_ns, seq_++, id});
    held_.insert(id);
  }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  // Release time of the earliest packet; only valid when !empty().
  int64_t next_due() const { return heap_.top().due; }
  // Removes every packet due at or before now; appends their ids in release order.
  // `dues`, if given, gets each one's release time (for the lateness of the release).
  void PopDue(int64_t now_ns, std::vector<uint32_t>* out, std::vector<int64_t>* dues = nullptr) {
    while (!heap_.empty() && heap_.top().due <= now_ns) {
      out->push_back(heap_.top().id);
      if (dues != nullptr) dues->push_back(heap_.top().due);
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
  static std::vector<Item> Reserved(size_t n) {
    std::vector<Item> v;
    v.reserve(n);
    return v;
  }
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap_;
  std::pmr::unsynchronized_pool_resource pool_;
  std::pmr::set<uint32_t> held_{&pool_};
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
// Fills `p` (its storage reused: no allocation once it has held as many singles).
inline void PlanVerdicts(const std::vector<uint32_t>& released, uint64_t min_held,
                         VerdictPlan* out) {
  VerdictPlan& p = *out;
  p.has_batch = false;
  p.batch_max = 0;
  p.single.clear();
  for (uint32_t id : released) {
    if (id < min_held) {
      if (!p.has_batch || id > p.batch_max) p.batch_max = id;
      p.has_batch = true;
    } else {
      p.single.push_back(id);
    }
  }
}
inline VerdictPlan PlanVerdicts(const std::vector<uint32_t>& released, uint64_t min_held) {
  VerdictPlan p;
  PlanVerdicts(released, min_held, &p);
  return p;
}

}  // namespace faultline::faults::net
