#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <set>
#include <string>

#include "experiments/loader.h"
#include "experiments/yaml_proto.h"

// Pieces of the loader shared between its source files.
namespace faultline::experiments::internal {

// Walks a document's top level, the same for every kind: apiVersion and kind (the loader has read
// them), metadata (a mapping; each field goes to `on_metadata` with its path), spec (returned),
// the keys in `ignored` (skipped on purpose) and nothing else: any other key is an error.
// Reports a missing metadata.name once `on_metadata` has had every field.
using MetadataField = std::function<void(const std::string& field, const std::string& path,
                                         const YAML::Node& key, const YAML::Node& value)>;
YAML::Node ReadEnvelope(const YAML::Node& doc, Reporter& r, const MetadataField& on_metadata,
                        const v1::Experiment& named, const std::set<std::string>& ignored = {});

void ReadNative(const YAML::Node& doc, Reporter& r, v1::Experiment* out);
void ReadChaosMesh(const YAML::Node& doc, const std::string& kind, Reporter& r,
                   v1::Experiment* out);
// A fault step without a duration takes the one its fault implies (a kill with restart_after
// lasts until the restart), so the runner holds the fault as long as the CLI would.
void FillImpliedDurations(v1::Experiment* e);
// Reports problems of `e` under `prefix` ("spec." for native documents).
void ValidateInto(const v1::Experiment& e, const std::string& prefix, const LoadOptions& o,
                  Reporter& r);

// Whether `kind` of apiVersion chaos-mesh.org/v1alpha1 is one faultline maps (current spelling).
bool IsChaosMeshKind(const std::string& kind);
// chaos-mesh 1.x's spelling of a kind ("IoChaos") as chaos-mesh spells it now ("IOChaos"); any
// other kind as given.
std::string CanonicalChaosMeshKind(const std::string& kind);

}  // namespace faultline::experiments::internal
