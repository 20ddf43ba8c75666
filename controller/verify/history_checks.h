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

// Per watcher: revisions never go down, no (revision, key) twice, and no event that another
// watcher or an acknowledged write shows inside the span it covered is missing.
CheckResult CheckWatches(const History& h);

// Linearizability as a CheckResult (evidence: verdict, counts, the failing windows).
CheckResult CheckLinearizable(const History& h, const LinearizabilityOptions& options = {});

// All history checks in order.
std::vector<CheckResult> CheckHistory(const History& h, const LinearizabilityOptions& options = {});

}  // namespace faultline::verify
