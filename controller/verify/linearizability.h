#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "controller/verify/history.h"

namespace faultline::verify {

// Linearizability of a workload history against a model of etcd's KV store, checked key by key
// (P-compositionality: a history of independent keys is linearizable iff each key's is).
//
// The model per key: present or not, its value, the revision of its last change, and the store
// revision the key's answers have shown (etcd's revision only grows, so an op answered at header
// revision H cannot come after one that saw more). A put or a successful cas must carry a higher
// revision than the last change; a read must see the value and mod_revision of the last write; a
// cas succeeds exactly when its compare holds; a delete reports one deletion exactly when the key
// existed. Failed ops never took effect; serializable reads are allowed to be stale and are not
// judged.
//
// Ops with an unknown outcome may take effect at any point after their invocation, or never, and
// at most once. Values are unique, which the checker uses without giving anything up:
// - an unknown write whose value a read saw did happen, at the mod revision that read reported;
// - unknown writes of values no op of the key ever mentions are interchangeable (as are unknown
//   deletes): the search counts how many took effect instead of which, always the earliest.
//
// The search: a key's history is cut at quiescent points (no answered op in flight). For each
// segment between cuts, a Wing–Gong/Lowe search (linearize ops in an order consistent with real
// time, backtrack on a contradiction, never visit a (linearized set, model state) twice)
// enumerates every configuration the segment can end in, starting from every configuration the
// previous one could end in: model state, which unknown ops took effect. A configuration that
// leaves more unknown ops available subsumes one that leaves fewer, so only the minimal ones are
// kept. The search never backtracks across a cut; a segment that no configuration gets through
// proves the key not linearizable right there, and the checker stops at it.
//
// A failure is reported on the smallest part that still fails: the shortest prefix of the failing
// segment (exactly, from the configurations it started in), then the latest point inside it where
// no write was in flight that still fails from any starting state (sound: a window that fails
// from every state fails in the history). The report gives the ops of that window, the longest
// linearization the search found for it and the model state where it got stuck.
struct LinearizabilityOptions {
  // Search steps allowed per key before giving up with an inconclusive verdict.
  uint64_t max_steps_per_key = 200'000'000;
  // On a failing key, find the smallest failing window to report.
  bool shrink = true;
  // Explain at most this many failing keys (the verdict still covers every key).
  size_t max_failures = 5;
};

struct KeyFailure {
  std::string key;
  size_t key_ops = 0;       // ops of this key that were checked
  size_t segment = 0;       // the failing segment (0-based) of the key's quiescent segments
  size_t segments = 0;      // quiescent segments (no op in flight between them) of the key
  size_t prefix_ops = 0;    // ops in the window that proves the failure
  int64_t failing_op = -1;  // id of the op whose return no linearization of the window reaches
  int64_t window_start_ns = 0, window_end_ns = 0;
  // The window's ops: first `context_ops` writes that finished just before it (what the state
  // it starts in came from), then every op invoked in it in invocation order (unknown-outcome
  // writes from before it that may still apply are counted in the explanation, not listed).
  std::vector<Op> window;
  size_t context_ops = 0;
  // Where the window starts: "any state" (a point with no write in flight) or the state(s) the
  // segment could start in.
  std::string start_state;
  // The longest linearization of the window the search found (op ids, in order) and the model
  // state it leaves; the next op to return could not be linearized after it.
  std::vector<int64_t> linearized;
  std::string stuck_state;
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
  // Writes and deletes without an answer, and what the history proved about them: a read, a
  // watch event or the final read saw the value (it happened, at that revision), or a compare
  // could never have held. The rest stayed unknown (may or may not have happened).
  size_t unknown_ops = 0;
  size_t unknown_proven_by_read = 0, unknown_proven_by_watch = 0, unknown_proven_by_final = 0;
  size_t unknown_no_effect = 0;
  size_t unknown_unresolved = 0;
  bool ok() const { return verdict == Verdict::kLinearizable; }
  std::string Summary() const;
};

LinearizabilityResult CheckLinearizability(const History& h,
                                           const LinearizabilityOptions& options = {});

// Renders one failure as text: the window of ops as a table with times relative to the first,
// the failing op marked '>' and each op's place in the longest linearization as "#n".
std::string RenderFailure(const KeyFailure& f);

}  // namespace faultline::verify
