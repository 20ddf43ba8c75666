#include "bench/verify/history_gen.h"

#include <algorithm>
#include <map>
#include <optional>
#include <unordered_map>

#include "faults/core/rng.h"

namespace faultline::bench {

using namespace verify;

History Generate(const GenOptions& o, int64_t* stale_id) {
  faults::Rng rng(o.seed);
  History h;
  h.ops.reserve(o.ops);
  struct Pending {
    int64_t lin;
    size_t index;
  };
  std::vector<Pending> order;
  order.reserve(o.ops);
  std::vector<int64_t> clock(o.clients);
  for (int c = 0; c < o.clients; ++c) clock[c] = static_cast<int64_t>(rng.Below(1000)) * 1000;
  for (int64_t i = 0; i < o.ops; ++i) {
    int c = static_cast<int>(rng.Below(o.clients));
    Op op;
    op.id = i;
    op.client = c;
    op.endpoint = "m" + std::to_string(c % 3);
    op.key = "k" + std::to_string(rng.Below(o.keys));
    uint64_t pick = rng.Below(100);
    op.type = pick < 40   ? OpType::kPut
              : pick < 80 ? OpType::kGet
              : pick < 90 ? OpType::kCas
                          : OpType::kDelete;
    if (op.type == OpType::kPut || op.type == OpType::kCas) op.value = "v" + std::to_string(i);
    int64_t dur = 50'000 + static_cast<int64_t>(rng.Below(2'000'000));  // 50 us .. 2 ms
    op.invoke_ns = clock[c];
    op.return_ns = op.invoke_ns + dur;
    clock[c] = op.return_ns + static_cast<int64_t>(rng.Below(100'000));
    bool unknown = op.type != OpType::kGet && rng.Uniform() < o.unknown_fraction;
    op.outcome = unknown ? Outcome::kUnknown : Outcome::kOk;
    int64_t lin = op.invoke_ns + 1 + static_cast<int64_t>(rng.Below(dur - 1));
    if (unknown && rng.Below(2) == 0) lin = -1;  // timed out and never applied
    h.ops.push_back(std::move(op));
    if (lin >= 0) order.push_back({lin, h.ops.size() - 1});
  }
  std::sort(order.begin(), order.end(),
            [](const Pending& a, const Pending& b) { return a.lin < b.lin; });
  struct Cell {
    std::string value;
    int64_t mod = 0;
    size_t writer = 0;  // index of the op that wrote it
    int64_t create = 0, version = 0;
  };
  std::vector<WatchEvent> changes;  // every change, in revision order, for the watchers
  auto changed = [&](const std::string& key, const Cell* before, const Cell* after) {
    if (o.watchers == 0) return;
    WatchEvent e;
    e.key = key;
    e.is_delete = after == nullptr;
    e.revision = after ? after->mod : before->mod;  // a delete's revision is set by the caller
    if (after) {
      e.value = after->value;
      e.create_revision = after->create;
      e.version = after->version;
    }
    if (before) {
      e.has_prev = true;
      e.prev_value = before->value;
      e.prev_mod_revision = before->mod;
    }
    changes.push_back(std::move(e));
  };
  std::unordered_map<std::string, Cell> store;
  std::unordered_map<std::string, Cell> previous;  // key -> the value before the current one
  std::vector<std::unordered_map<std::string, std::optional<std::string>>> known(o.clients);
  int64_t revision = 1;
  size_t stale_at =
      o.stale_read_at < 0 ? order.size() : static_cast<size_t>(o.stale_read_at * order.size());
  bool stale_done = false;
  for (size_t n = 0; n < order.size(); ++n) {
    Op& op = h.ops[order[n].index];
    auto it = store.find(op.key);
    bool present = it != store.end();
    auto& kn = known[op.client];
    switch (op.type) {
      case OpType::kPut: {
        if (present) previous[op.key] = it->second;
        Cell next{op.value, ++revision, order[n].index, present ? it->second.create : revision,
                  present ? it->second.version + 1 : 1};
        changed(op.key, present ? &it->second : nullptr, &next);
        store[op.key] = std::move(next);
        op.revision = revision;
        kn[op.key] = op.value;
        break;
      }
      case OpType::kGet:
        op.revision = revision;
        op.found = present;
        if (present) {
          op.read_value = it->second.value;
          op.read_mod_revision = it->second.mod;
        }
        if (!stale_done && n >= stale_at && present && previous.count(op.key) &&
            op.outcome == Outcome::kOk && h.ops[it->second.writer].outcome == Outcome::kOk &&
            h.ops[it->second.writer].return_ns < op.invoke_ns) {
          // Stale, as a member that had not yet applied the current value would answer: the
          // value before it, at the store revision just before it. The read began after the
          // current value's write had been acknowledged, so no order explains it.
          const Cell& prev = previous[op.key];
          op.read_value = prev.value;
          op.read_mod_revision = prev.mod;
          op.revision = it->second.mod - 1;
          stale_done = true;
          if (stale_id != nullptr) *stale_id = op.id;
        }
        kn[op.key] = present ? std::optional<std::string>(op.read_value) : std::nullopt;
        break;
      case OpType::kCas: {
        auto k = kn.find(op.key);
        op.expect_absent = k == kn.end() || !k->second.has_value();
        if (!op.expect_absent) op.expect_value = *k->second;
        bool holds = op.expect_absent ? !present : (present && it->second.value == op.expect_value);
        op.succeeded = holds;
        if (holds) {
          if (present) previous[op.key] = it->second;
          Cell next{op.value, ++revision, order[n].index, present ? it->second.create : revision,
                    present ? it->second.version + 1 : 1};
          changed(op.key, present ? &it->second : nullptr, &next);
          store[op.key] = std::move(next);
          kn[op.key] = op.value;
        } else {
          kn[op.key] = present ? std::optional<std::string>(it->second.value) : std::nullopt;
        }
        op.revision = revision;
        break;
      }
      case OpType::kDelete:
        op.deleted = present ? 1 : 0;
        if (present) {
          previous.erase(op.key);
          ++revision;
          changed(op.key, &it->second, nullptr);
          if (!changes.empty()) changes.back().revision = revision;
          store.erase(it);
        }
        op.revision = revision;
        kn[op.key] = std::nullopt;
        break;
    }
    if (op.outcome == Outcome::kUnknown) {
      op.revision = 0;
      op.succeeded = false;
      op.deleted = 0;
    }
  }
  // Unknown ops that never applied keep no response fields; unknown writes that did are only
  // visible through later reads, as with a real timed-out request.
  for (Op& op : h.ops) {
    if (op.outcome == Outcome::kUnknown) op.error = "deadline exceeded";
  }
  std::sort(h.ops.begin(), h.ops.end(),
            [](const Op& a, const Op& b) { return a.invoke_ns < b.invoke_ns; });
  h.watch_events.reserve(changes.size() * o.watchers);
  for (int m = 0; m < o.watchers; ++m) {
    WatchOpen w;
    w.watcher = "m" + std::to_string(m) + "/current[0]#0";
    w.endpoint = "m" + std::to_string(m);
    w.key = "k";
    w.range_end = "l";
    w.start_revision = 2;
    w.start = "current";
    w.prev_kv = true;
    h.watch_opens.push_back(w);
    int64_t response = 0;
    for (size_t i = 0; i < changes.size(); ++i) {
      WatchEvent e = changes[i];
      e.watcher = w.watcher;
      e.stream = 0;
      e.response = response++;
      h.watch_events.push_back(std::move(e));
      if ((i + 1) % 1000 == 0) {
        h.watch_progress.push_back({w.watcher, 0, response++, changes[i].revision, 0});
      }
    }
    h.watch_progress.push_back({w.watcher, 0, response++, revision, 0});
  }
  return h;
}

int64_t MakeStaleRead(History* h, double at) {
  std::vector<Op*> ops;
  for (Op& op : h->ops) ops.push_back(&op);
  std::stable_sort(ops.begin(), ops.end(),
                   [](const Op* a, const Op* b) { return a->invoke_ns < b->invoke_ns; });
  auto is_read = [](const Op* op) {
    return op->type == OpType::kGet && op->outcome == Outcome::kOk && !op->serializable;
  };
  // Per key, the latest read that found a value, as the scan goes by invocation; a put W from
  // `at` on whose key had such a read returning before W began, and whose revision is above
  // what that read saw, makes the next read of the key starting after W returned stale.
  std::unordered_map<std::string, const Op*> last_found;
  std::unordered_map<std::string, std::pair<const Op*, const Op*>> armed;  // key -> (W, R)
  const size_t from = static_cast<size_t>(std::clamp(at, 0.0, 1.0) * double(ops.size()));
  for (size_t i = 0; i < ops.size(); ++i) {
    Op* op = ops[i];
    auto arm = armed.find(op->key);
    if (arm != armed.end() && is_read(op) && op->invoke_ns > arm->second.first->return_ns) {
      const Op* w = arm->second.first;
      const Op* r = arm->second.second;
      op->found = true;
      op->read_value = r->read_value;
      op->read_mod_revision = r->read_mod_revision;
      op->revision = w->revision - 1;
      return op->id;
    }
    if (is_read(op) && op->found) {
      auto it = last_found.find(op->key);
      if (it == last_found.end() || it->second->return_ns < op->return_ns) last_found[op->key] = op;
    }
    bool acked_put = op->type == OpType::kPut && op->outcome == Outcome::kOk;
    if (i >= from && acked_put && !armed.count(op->key)) {
      auto it = last_found.find(op->key);
      if (it != last_found.end() && it->second->return_ns < op->invoke_ns &&
          it->second->read_mod_revision < op->revision) {
        armed[op->key] = {op, it->second};
      }
    }
  }
  return -1;
}

}  // namespace faultline::bench
