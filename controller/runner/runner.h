#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controller/runner/agent_fleet.h"
#include "controller/runner/run_result.h"
#include "controller/runner/targets.h"
#include "controller/verify/client.h"
#include "faultline/v1/experiment.pb.h"

namespace faultline::controller {

struct RunOptions {
  std::vector<AgentInfo> agents;
  std::vector<std::string> etcd_endpoints;
  // TLS to the cluster under test (its CA and a client certificate); timeouts are the runner's.
  verify::ClientOptions etcd_client;
  std::string run_id;  // empty: "<experiment>-<utc time>"
  // Every fault is injected with this lease and renewed every lease/3; if the runner dies, its
  // faults lapse within one lease.
  std::chrono::milliseconds lease{15000};
  std::string member_label = kMemberLabel;
  // How often each member's Status is sampled for the leader view.
  std::chrono::milliseconds leader_interval{1000};
  // Post-run wait for the cluster to be healthy again before the checks give up.
  std::chrono::milliseconds healthy_timeout{30000};
  AgentConnector connect = ConnectInsecure;
  // The HA controller's term: every Inject and Renew carries it, so agents refuse this run's
  // calls once a later term began elsewhere. None: unfenced (one controller, the CLI).
  std::optional<v1::ControllerFence> fence;
  // Live progress: called for every timeline event, from the runner's threads (serialised).
  std::function<void(const TimelineEvent&)> on_event;
  // Set to stop the run early; faults are recovered and the run is marked cancelled.
  const std::atomic<bool>* cancel = nullptr;
};

// Runs one experiment now: resolve targets, start the workload and the leader watch, run the
// steps (injecting with the run id as experiment id under a renewed lease), recover everything
// the run injected (also on error and cancel), then run the checks and SLOs. Never throws for
// problems of the run itself: they end in state ERROR with the reason.
RunResult RunExperiment(const v1::Experiment& experiment, const RunOptions& options);

// A run id: "<name>-YYYYMMDDTHHMMSSZ-<4 hex>".
std::string NewRunId(const std::string& experiment_name);

}  // namespace faultline::controller
