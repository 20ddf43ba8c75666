#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "controller/verify/check_result.h"

namespace faultline::verify {

// What one agent saw of one process it supervises (faults/process/managed): starts and exits,
// each exit with its cause, whether the agent or a fault meant it, and what the process wrote
// before it ended. Filled from the agent API (liveness_agents.h) or by hand in tests.
struct SupervisedProcess {
  std::string member;    // the agent's member label, or its address
  std::string process;   // e.g. "etcd"
  bool answered = true;  // false: the agent could not be asked (`error` says why)
  std::string error;
  int pid = 0;  // now; 0: not running
  int restarts = 0;
  std::string restart;  // its restart policy: never | on-failure | always ("" unknown)
  std::string log;
  struct Event {
    std::string kind;   // start | adopt | exit
    int64_t at_ms = 0;  // unix time
    int pid = 0;
    std::string cause;
    bool expected = false;
    std::string expected_by;
    std::vector<std::string> fatal_lines;
    std::string output_tail;
  };
  std::vector<Event> events;
};

struct LivenessOptions {
  int64_t since_ms = 0;          // judge events from this unix time on (0: all the agents remember)
  std::string process = "etcd";  // the supervised processes to judge ("": all)
};

// A process that exited or restarted by itself (not stopped by its agent, not after a fault's
// signal) fails the check, named with its member, when, how, and the first panic/fatal lines it
// wrote. Exits a fault meant are listed and do not fail it. No agent supervising the process is
// no evidence; an agent that could not be asked fails it.
CheckResult CheckLiveness(const std::vector<SupervisedProcess>& seen,
                          const LivenessOptions& options = {});

}  // namespace faultline::verify
