#include "experiments/loader.h"

#include <fstream>
#include <sstream>

#include "experiments/internal.h"
#include "faults/core/rng.h"

namespace faultline::experiments {

namespace {

constexpr const char* kNativeApi = "faultline/v1";
constexpr const char* kChaosMeshApi = "chaos-mesh.org/v1alpha1";

void ReadDocument(const YAML::Node& doc, Reporter& r, const LoadOptions& options,
                  std::vector<v1::Experiment>* out) {
  if (doc.IsNull()) return;  // an empty document between "---" separators
  if (!doc.IsMap()) {
    r.Error(doc, "", "a document must be a mapping with apiVersion and kind, got " + NodeKind(doc));
    return;
  }
  const YAML::Node api = doc["apiVersion"];
  const YAML::Node kind = doc["kind"];
  bool ok = true;
  if (!api || !api.IsScalar()) {
    r.Error(doc, "apiVersion", "required: \"faultline/v1\" or \"chaos-mesh.org/v1alpha1\"");
    ok = false;
  }
  if (!kind || !kind.IsScalar()) {
    r.Error(doc, "kind",
            "required (Experiment, IOChaos, NetworkChaos, PodChaos, StressChaos, "
            "TimeChaos, Schedule)");
    ok = false;
  }
  if (!ok) return;
  const std::string& api_s = api.Scalar();
  const std::string& kind_s = kind.Scalar();
  v1::Experiment e;
  size_t before = r.error_count();
  std::string prefix;
  if (api_s == kNativeApi) {
    if (kind_s != "Experiment") {
      r.Error(kind, "kind", "unknown kind '" + kind_s + "' for faultline/v1; expected Experiment");
      return;
    }
    internal::ReadNative(doc, r, &e);
    prefix = "spec.";
  } else if (api_s == kChaosMeshApi) {
    const std::string canonical = internal::CanonicalChaosMeshKind(kind_s);
    if (!internal::IsChaosMeshKind(canonical)) {
      r.Error(kind, "kind",
              "chaos-mesh kind '" + kind_s +
                  "' is not supported; supported: IOChaos (1.x: IoChaos), NetworkChaos, PodChaos, "
                  "StressChaos, TimeChaos, Schedule");
      return;
    }
    if (canonical != kind_s) {
      r.Note(
          kind, "kind",
          "chaos-mesh 1.x kind '" + kind_s + "' read as its current spelling '" + canonical + "'");
    }
    internal::ReadChaosMesh(doc, canonical, r, &e);
    prefix = "spec.";
  } else {
    r.Error(api, "apiVersion",
            "unknown apiVersion '" + api_s + "'; expected faultline/v1 or chaos-mesh.org/v1alpha1");
    return;
  }
  e.set_source_kind(api_s + " " + kind_s);
  e.set_source(r.file() + ":" + std::to_string(doc.Mark().line + 1));
  // A seed is part of what makes a run replayable; without one, derive it from the name so the
  // same file always replays the same choices.
  if (e.seed() == 0) e.set_seed(faults::StableHash(e.name()));
  internal::FillImpliedDurations(&e);
  // Structure is only worth checking when the document read cleanly; otherwise the missing
  // pieces would be reported twice.
  if (r.error_count() == before) internal::ValidateInto(e, prefix, options, r);
  if (r.error_count() == before) out->push_back(std::move(e));
}

}  // namespace

LoadResult LoadString(std::string_view yaml, const std::string& file_name,
                      const LoadOptions& options) {
  LoadResult result;
  Reporter r(file_name);
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::ParserException& ex) {
    r.Error(ex.mark, "", "malformed YAML: " + ex.msg);
    result.errors = r.diagnostics();
    return result;
  }
  if (docs.empty()) r.Error(YAML::Mark(), "", "no documents");
  std::vector<v1::Experiment> out;
  for (const auto& doc : docs) ReadDocument(doc, r, options, &out);
  // Two documents with one name would be indistinguishable in schedules and reports.
  for (size_t i = 0; i < out.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (out[i].name() == out[j].name()) {
        r.Error(YAML::Mark(), "metadata.name",
                "duplicate experiment name '" + out[i].name() + "' (" + out[j].source() + " and " +
                    out[i].source() + ")");
      }
    }
  }
  result.errors = r.diagnostics();
  result.notes = r.notes();
  if (result.errors.empty()) result.experiments = std::move(out);
  return result;
}

LoadResult LoadFile(const std::string& path, const LoadOptions& options) {
  std::ifstream in(path);
  if (!in) {
    LoadResult result;
    result.errors.push_back({path, 0, 0, "", "cannot open file"});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return LoadString(text.str(), path, options);
}

std::vector<v1::Experiment> LoadFileOrThrow(const std::string& path, const LoadOptions& options) {
  auto result = LoadFile(path, options);
  if (!result.ok()) throw LoadError(std::move(result.errors));
  return std::move(result.experiments);
}

Diagnostics Validate(const v1::Experiment& experiment, const LoadOptions& options) {
  Reporter r("");
  internal::ValidateInto(experiment, "", options, r);
  return r.diagnostics();
}

}  // namespace faultline::experiments
