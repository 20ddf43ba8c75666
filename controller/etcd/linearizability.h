#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "controller/etcd/history.h"

namespace faultline::controller::etcd {

// Linearizability of a workload history against a model of etcd's KV store, checked key by key
// (P-compositionality: a history of independent keys is linearizable iff each key's is) with the
// Wing–Gong search as refined by Lowe: operations are linearized in an order consistent with real
// time, backtracking on a contradiction, and every (set of linearized ops, model state) pair seen
// is remembered so no subtree is searched twice.
//
// The model per key: present or not, its value, and the revision of its last change. A put or a
// successful cas must carry a higher revision than the last change; a read must see the value and
// mod_revision of the last write; a cas succeeds exactly when its compare holds; a delete reports
// one deletion exactly when the key existed. Ops with an unknown outcome may take effect at any
// point after their invocation, or never. Failed ops never took effect; serializable reads are not
// linearizable by design and are not checked here.
//
// Memo keys are two independent 64-bit Zobrist hashes of the linearized set combined with the
// model state: a 2^-128-probability collision could prune a valid branch, in exchange for ~24
// bytes per memo entry instead of one bit per op.
struct LinearizabilityOptions {
  // Search steps allowed per key before giving up with an inconclusive verdict.
  uint64_t max_steps_per_key = 200'000'000;
  // On a failing key, search for the shortest failing prefix to report.
  bool shrink = true;
  // Stop after this many failing keys (each is shrunk).
  size_t max_failures = 5;
};

struct KeyFailure {
  std::string key;
  size_t key_ops = 0;       // ops of this key that were checked
  size_t prefix_ops = 0;    // ops in the shortest failing prefix
  int64_t failing_op = -1;  // id of the op that could not be placed
  std::vector<Op> window;   // the failing op and the ops around it, in invocation order
  std::string explanation;
};

struct LinearizabilityResult {
  enum class Verdict {
    kLinearizable,
    kNotLinearizable,
    kInconclusive
  } verdict = Verdict::kLinearizable;
  size_t keys = 0;
  size_t ops_checked = 0;  // ok and unknown ops that entered the search
  size_t ops_skipped = 0;  // failed ops, serializable reads, reads with unknown outcome
  uint64_t steps = 0;
  uint64_t memo_entries = 0;
  std::vector<KeyFailure> failures;
  std::vector<std::string> inconclusive_keys;
  bool ok() const { return verdict == Verdict::kLinearizable; }
  std::string Summary() const;
};

LinearizabilityResult CheckLinearizability(const History& h,
                                           const LinearizabilityOptions& options = {});

// Renders one failure as text: the window of ops as a table with times relative to the first.
std::string RenderFailure(const KeyFailure& f);

}  // namespace faultline::controller::etcd
