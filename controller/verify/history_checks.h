#pragma once

#include <string>
#include <vector>

#include "controller/verify/check_result.h"
#include "controller/verify/history.h"
#include "controller/verify/linearizability.h"

namespace faultline::verify {

// An op in a finding: id, client, type, key, endpoint and (answered) revision.
nlohmann::json OpBrief(const Op& op);

// Acknowledged writes that were never visible afterwards: a linearizable read (or the final read)
// invoked after a put/cas was acknowledged at revision r must see the key at mod_revision >= r, or
// see it absent only if a delete that could have come later exists. Also flags a read whose value
// belongs to an acknowledged write but whose mod_revision differs from the one acknowledged (the
// write was applied twice or under another revision).
CheckResult CheckLostWrites(const History& h);

// Per client, the header revision of successive ok operations never goes down (serializable reads
// are compared only with earlier ops sent to the same member).
CheckResult CheckRevisionMonotonic(const History& h);

// Serializable reads may be stale but must show a state their member could have had:
// - the value was written by some write of that key invoked before the read returned, at the
//   mod revision that write was acknowledged at (when it was);
// - the read's revision is no later than what was committed when it returned (no linearizable
//   op invoked after its return saw a lower revision), and its mod revision no later than that;
// - it is the key's state at the read's own revision: no acknowledged change of the key between
//   the mod revision it shows and the revision it answered at;
// - on one client and member, a key's mod revision never goes back.
// Each finding names the read (and the write or earlier read that contradicts it).
CheckResult CheckSerializableReads(const History& h);

// Per watcher: revisions never go down, no (revision, key) twice, and no event that another
// watcher or an acknowledged write shows inside the span it covered is missing.
CheckResult CheckWatches(const History& h);

// Linearizability as a CheckResult (evidence: verdict, counts, the failing windows).
CheckResult CheckLinearizable(const History& h, const LinearizabilityOptions& options = {});

// All history checks in order.
std::vector<CheckResult> CheckHistory(const History& h, const LinearizabilityOptions& options = {});

}  // namespace faultline::verify
