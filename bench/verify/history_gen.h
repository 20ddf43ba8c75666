#pragma once

#include <cstdint>

#include "controller/verify/history.h"

namespace faultline::bench {

struct GenOptions {
  int64_t ops = 10000;
  int keys = 10;
  int clients = 8;
  uint64_t seed = 1;
  double unknown_fraction = 0.001;  // writes whose client timed out (half of them still applied)
  // Make one read, at this fraction of the history (or the first fitting one after it), return
  // the key's previous value as a lagging member would (its mod revision, the store revision
  // before the current value), although the current value's write was acknowledged before the
  // read began: a stale read that makes the history non-linearizable. < 0: none.
  double stale_read_at = -1;
  // Watchers (one per member) that each receive every change in order, one response per
  // revision, with create revision, version and prev_kv, and a progress notification every 1000
  // events and at the end: what the watch guarantees are checked on. 0: none.
  int watchers = 0;
};

// A history of `clients` sequential clients over `keys` keys, produced by executing each op
// atomically at a random point inside its [invoke, return] interval against an in-memory etcd
// model (global revision, mod revisions, value compares): linearizable by construction.
// `stale_id`: set to the stale read's id when one was made.
verify::History Generate(const GenOptions& o, int64_t* stale_id = nullptr);

// Makes one read of a recorded history stale, as a member that had not applied a write would
// answer: the first linearizable read L (from fraction `at` of the history on, by invocation)
// that began after an acknowledged put W of its key returned, given the value an earlier read
// saw before W, that value's mod revision and the store revision just before W. No order explains
// L then. Returns L's id, or -1 if no read fits.
int64_t MakeStaleRead(verify::History* h, double at = 0.5);

}  // namespace faultline::bench
