#pragma once

#include <vector>

#include "controller/verify/check_result.h"
#include "controller/verify/history.h"

namespace faultline::verify {

// etcd's watch guarantees (https://etcd.io/docs/v3.5/learning/api_guarantees/#watch-apis), each
// judged on every watcher of the history and reported as its own check:
//   watch-ordered       revisions never go back on one watcher
//   watch-unique        no (revision, key) twice on one watcher, across its resumed streams too
//   watch-atomic        all events of one revision arrive in one response
//   watch-resumable     a stream opened at S gets no event (nor progress notification) below S,
//                       and its first event is the first change at or after S
//   watch-bookmarkable  after a progress notification at P no event at or below P arrives, and
//                       no notification goes below an event already delivered
//   watch-reliable      every change the history proves (acknowledged writes, lease revocations,
//                       what any watcher or prev_kv showed) in the watcher's range between its
//                       start and the last revision it reached is delivered, exactly as it was
//   watch-prev-kv       a prev_kv is the key's previous state; missing only for a create or
//                       where a compaction may have removed it
//   watch-is-create     an event is a create exactly when the key did not exist before it
// A finding names the guarantee, the watcher, the member it watched, the revision and the
// event(s). Histories without watch_open records (older files) are judged on what they carry.
std::vector<CheckResult> CheckWatchGuarantees(const History& h);

// The guarantee names above, in the order CheckWatchGuarantees returns them.
const std::vector<const char*>& WatchGuaranteeNames();

}  // namespace faultline::verify
