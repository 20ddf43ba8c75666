#pragma once

#include "controller/verify/check_result.h"
#include "controller/verify/history.h"

namespace faultline::verify {

// Leases (the workload's lease traffic): no key outlives its lease's revocation (a linearizable
// read invoked after a revocation was acknowledged finds none of the lease's keys), and none
// vanishes while its lease lives (a read that returned before the lease could expire, counting
// the TTL from the invocation of the last acknowledged grant or keep-alive, and before any
// revocation of it was sent, finds every key put with the lease before it was invoked).
CheckResult CheckLeases(const History& h);

// Reads at a past revision agree with the history: a compare-and-swap's read of its key at
// revision P, and a list at revision R, show each key as its last proven change at or before
// that revision left it (ProvenChanges: acknowledged writes, lease revocations, watch events).
// A key the history shows changed after the value read but at or before the read's revision, or
// present where the read found nothing (with no unanswered delete that could explain it), or
// absent from a list, is a finding naming the op, the key and the change.
CheckResult CheckPastReads(const History& h);

}  // namespace faultline::verify
