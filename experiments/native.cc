#include "experiments/internal.h"

namespace faultline::experiments::internal {

void ReadNative(const YAML::Node& doc, Reporter& r, v1::Experiment* out) {
  YAML::Node spec = ReadEnvelope(
      doc, r,
      [&](const std::string& field, const std::string& path, const YAML::Node& key,
          const YAML::Node& value) {
        if (field == "bug") {
          // A known etcd bug this experiment reproduces (experiments/bugs).
          ReadMessage(value, out->mutable_bug(), path, r);
        } else if (field != "name" && field != "description") {
          r.Error(key, path, "unknown field; known fields: name, description, bug");
        } else if (!value.IsScalar()) {
          r.Error(value, path, "expected a string, got " + NodeKind(value));
        } else if (field == "name") {
          out->set_name(value.Scalar());
        } else {
          out->set_description(value.Scalar());
        }
      },
      *out);
  if (!spec) {
    r.Error(doc.Mark(), "spec", "required");
    return;
  }
  // Where a value comes from something other than the spec, writing it there is an error rather
  // than a silent override.
  static const ForbiddenFields kForbidden = {
      {v1::Experiment::descriptor()->full_name(),
       {{"name", "set by metadata.name"},
        {"description", "set by metadata.description"},
        {"bug", "set by metadata.bug"},
        {"source_kind", "set by the loader"},
        {"source", "set by the loader"}}},
      {v1::FaultSpec::descriptor()->full_name(),
       {{"duration", "write the duration on the step"},
        {"seed", "fault seeds derive from the experiment's seed"}}},
  };
  ReadMessage(spec, out, "spec", r, kForbidden);
}

YAML::Node ReadEnvelope(const YAML::Node& doc, Reporter& r, const MetadataField& on_metadata,
                        const v1::Experiment& named, const std::set<std::string>& ignored) {
  YAML::Node spec;
  for (const auto& kv : doc) {
    const std::string key = kv.first.Scalar();
    r.Remember(key, kv.first.Mark());
    if (key == "apiVersion" || key == "kind" || ignored.count(key)) continue;
    if (key == "metadata") {
      if (!kv.second.IsMap()) {
        r.Error(kv.second, "metadata", "expected a mapping, got " + NodeKind(kv.second));
        continue;
      }
      for (const auto& m : kv.second) {
        const std::string field = m.first.Scalar();
        const std::string path = "metadata." + field;
        r.Remember(path, m.first.Mark());
        on_metadata(field, path, m.first, m.second);
      }
    } else if (key == "spec") {
      spec = kv.second;
    } else {
      r.Error(kv.first, key, "unknown field; known fields: apiVersion, kind, metadata, spec");
    }
  }
  if (named.name().empty()) r.Error(doc.Mark(), "metadata.name", "required");
  return spec;
}

}  // namespace faultline::experiments::internal
