#include "controller/verify/proven.h"

#include <algorithm>
#include <stdexcept>

namespace faultline::verify {

namespace {
// Revisions below 2^40, keys below 2^24.
constexpr int kKeyBits = 24;
}  // namespace

uint64_t ProvenChanges::Code(int64_t rev, uint32_t key) {
  return (static_cast<uint64_t>(rev) << kKeyBits) | key;
}

uint32_t ProvenChanges::Id(std::string_view key) {
  auto [it, fresh] = ids_.try_emplace(key, static_cast<uint32_t>(names_.size()));
  if (fresh) {
    if (names_.size() >= (1u << kKeyBits)) {
      throw std::runtime_error("history checks: more than 16M distinct keys");
    }
    names_.push_back(key);
  }
  return it->second;
}

int64_t ProvenChanges::Add(const Change& c) {
  auto [it, fresh] = at_.try_emplace(Code(c.rev, c.key), static_cast<uint32_t>(changes_.size()));
  if (fresh) {
    changes_.push_back(c);
    return -1;
  }
  return it->second;
}

ProvenChanges::ProvenChanges(const History& h) {
  std::unordered_map<int64_t, std::vector<const Op*>> lease_puts;
  for (const Op& op : h.ops) {
    if (op.outcome != Outcome::kOk || !op.ChangedTheStore()) continue;
    Change c;
    c.rev = op.revision;
    c.key = Id(op.key);
    c.del = op.type == OpType::kDelete;
    if (!c.del) c.value = op.value;
    c.op = &op;
    Add(c);
    if (op.type == OpType::kPut && op.lease != 0) lease_puts[op.lease].push_back(&op);
  }
  for (const AdminOp& a : h.admin) {
    if (a.kind == AdminOp::Kind::kCompact && a.outcome != Outcome::kFailed) {
      max_compact_ = std::max(max_compact_, a.revision);
    }
    if (a.kind != AdminOp::Kind::kLeaseRevoke || a.outcome != Outcome::kOk) continue;
    auto it = lease_puts.find(a.lease);
    if (it == lease_puts.end()) continue;
    // The lease traffic puts each key once per lease, so a revocation deletes every key put
    // with the lease before it.
    for (const Op* put : it->second) {
      if (put->revision >= a.revision) continue;
      Change c;
      c.rev = a.revision;
      c.key = Id(put->key);
      c.del = true;
      c.revoke = &a;
      Add(c);
    }
  }
  for (const WatchEvent& e : h.watch_events) {
    Change c;
    c.rev = e.revision;
    c.key = Id(e.key);
    c.del = e.is_delete;
    if (!e.is_delete) c.value = e.value;
    c.seen = &e;
    int64_t old = Add(c);
    if (old < 0) continue;
    Change& known = changes_[old];
    if (known.del != c.del || (!c.del && known.value != c.value)) {
      contradictions_.push_back({&e, static_cast<size_t>(old)});
    } else if (!known.seen) {
      known.seen = &e;
    }
  }
  // What a prev_kv or a read at a past revision showed (a disagreeing one is judged by its
  // own check).
  for (const WatchEvent& e : h.watch_events) {
    if (!e.has_prev || e.prev_mod_revision <= 0) continue;
    Change c;
    c.rev = e.prev_mod_revision;
    c.key = Id(e.key);
    c.value = e.prev_value;
    c.prev_of = &e;
    Add(c);
  }
  for (const Op& op : h.ops) {
    if (op.outcome != Outcome::kOk || op.past_revision <= 0 || !op.past_found) continue;
    Change c;
    c.rev = op.past_mod_revision;
    c.key = Id(op.key);
    c.value = op.past_value;
    c.read_by = &op;
    Add(c);
  }
  for (const ListOp& l : h.lists) {
    if (l.outcome != Outcome::kOk) continue;
    for (const ListOp::Kv& kv : l.kvs) {
      Change c;
      c.rev = kv.mod_revision;
      c.key = Id(kv.key);
      c.value = kv.value;
      c.listed_by = &l;
      Add(c);
    }
  }
  at_.clear();
  std::sort(changes_.begin(), changes_.end(), [](const Change& a, const Change& b) {
    return Code(a.rev, a.key) < Code(b.rev, b.key);
  });
  // Contradictions pointed into the unsorted vector: map them through the codes.
  codes_.resize(changes_.size());
  by_key_.assign(names_.size(), {});
  for (size_t i = 0; i < changes_.size(); ++i) {
    codes_[i] = Code(changes_[i].rev, changes_[i].key);
    by_key_[changes_[i].key].push_back(static_cast<uint32_t>(i));
  }
  for (Contradiction& c : contradictions_) {
    uint64_t code = Code(c.event->revision, Id(c.event->key));
    c.change = std::lower_bound(codes_.begin(), codes_.end(), code) - codes_.begin();
  }
}

size_t ProvenChanges::LowerBound(int64_t rev) const {
  return std::lower_bound(codes_.begin(), codes_.end(), Code(rev, 0)) - codes_.begin();
}

const ProvenChanges::Change* ProvenChanges::AtOrBefore(uint32_t key, int64_t rev) const {
  if (key >= by_key_.size()) return nullptr;
  const auto& v = by_key_[key];
  auto it = std::upper_bound(v.begin(), v.end(), rev,
                             [&](int64_t r, uint32_t i) { return r < changes_[i].rev; });
  return it == v.begin() ? nullptr : &changes_[*(it - 1)];
}

const ProvenChanges::Change* ProvenChanges::After(uint32_t key, int64_t rev, int64_t until) const {
  if (key >= by_key_.size()) return nullptr;
  const auto& v = by_key_[key];
  auto it = std::upper_bound(v.begin(), v.end(), rev,
                             [&](int64_t r, uint32_t i) { return r < changes_[i].rev; });
  if (it == v.end() || changes_[*it].rev > until) return nullptr;
  return &changes_[*it];
}

std::string ProvenChanges::Proof(const Change& c) {
  if (c.op) {
    return std::string("acknowledged ") + (c.op->conditional ? "conditional " : "") +
           ToString(c.op->type) + ", op " + std::to_string(c.op->id) + " of client " +
           std::to_string(c.op->client) + (c.op->endpoint.empty() ? "" : " via " + c.op->endpoint);
  }
  if (c.revoke) return "lease " + std::to_string(c.revoke->lease) + " revoked at this revision";
  if (c.seen) return "delivered to watcher " + c.seen->watcher;
  if (c.prev_of) return "prev_kv of an event on watcher " + c.prev_of->watcher;
  if (c.read_by) return "read at a past revision by op " + std::to_string(c.read_by->id);
  if (c.listed_by) return "listed by list " + std::to_string(c.listed_by->id);
  return "?";
}

std::string DescribeChange(bool del, std::string_view key, int64_t rev, std::string_view value) {
  std::string s = del ? "DELETE " : "PUT ";
  s += key;
  if (!del) {
    s += "=\"" + std::string(value.substr(0, 40)) + (value.size() > 40 ? "...\"" : "\"");
  }
  return s + " at revision " + std::to_string(rev);
}

}  // namespace faultline::verify
