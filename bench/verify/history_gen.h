#pragma once

#include <cstdint>

#include "controller/etcd/history.h"

namespace faultline::bench {

struct GenOptions {
  int64_t ops = 10000;
  int keys = 10;
  int clients = 8;
  uint64_t seed = 1;
  double unknown_fraction = 0.001;  // writes whose client timed out (half of them still applied)
  // Make one read, at this fraction of the history, return the key's previous value: a stale read
  // that makes the history non-linearizable. < 0: none.
  double stale_read_at = -1;
};

// A history of `clients` sequential clients over `keys` keys, produced by executing each op
// atomically at a random point inside its [invoke, return] interval against an in-memory etcd
// model (global revision, mod revisions, value compares): linearizable by construction.
controller::etcd::History Generate(const GenOptions& o);

}  // namespace faultline::bench
