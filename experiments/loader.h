#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "experiments/diagnostics.h"
#include "faultline/v1/experiment.pb.h"

namespace faultline::experiments {

struct LoadOptions {
  // Checks a cron expression: empty when valid, else the reason. experiments/ sits below the
  // controller and cannot call its cron parser, so the caller passes it; unset means the cron
  // text is only checked for being present.
  std::function<std::string(const std::string&)> validate_cron;
};

struct LoadResult {
  std::vector<v1::Experiment> experiments;
  Diagnostics errors;
  // Not errors, but worth showing the user: e.g. a chaos-mesh 1.x spelling that was mapped.
  Diagnostics notes;
  bool ok() const { return errors.empty(); }
};

// Loads every document of a YAML stream: native `apiVersion: faultline/v1, kind: Experiment`
// or the chaos-mesh.org/v1alpha1 kinds IOChaos, NetworkChaos, PodChaos, StressChaos, TimeChaos and
// Schedule (and chaos-mesh 1.x's spellings of them, IoChaos and per-kind `scheduler`, with a note).
// All errors are collected (file:line:column, field path, reason); experiments are returned
// only when there is none, so nothing is half-loaded.
LoadResult LoadString(std::string_view yaml, const std::string& file_name,
                      const LoadOptions& options = {});
LoadResult LoadFile(const std::string& path, const LoadOptions& options = {});

// Same, throwing LoadError with every diagnostic.
std::vector<v1::Experiment> LoadFileOrThrow(const std::string& path,
                                            const LoadOptions& options = {});

// Structural checks the loader runs on every experiment (exposed for experiments built in code):
// required fields, one action per step, target modes and values, durations. Paths are relative
// to the experiment ("steps[0].duration").
Diagnostics Validate(const v1::Experiment& experiment, const LoadOptions& options = {});

}  // namespace faultline::experiments
