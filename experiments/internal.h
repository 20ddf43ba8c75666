#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "experiments/loader.h"
#include "experiments/yaml_proto.h"

// Pieces of the loader shared between its source files.
namespace faultline::experiments::internal {

void ReadNative(const YAML::Node& doc, Reporter& r, v1::Experiment* out);
void ReadChaosMesh(const YAML::Node& doc, const std::string& kind, Reporter& r,
                   v1::Experiment* out);
// Reports problems of `e` under `prefix` ("spec." for native documents).
void ValidateInto(const v1::Experiment& e, const std::string& prefix, const LoadOptions& o,
                  Reporter& r);

// Whether `kind` of apiVersion chaos-mesh.org/v1alpha1 is one faultline maps.
bool IsChaosMeshKind(const std::string& kind);

}  // namespace faultline::experiments::internal
