#include "experiments/internal.h"

namespace faultline::experiments::internal {

void ReadNative(const YAML::Node& doc, Reporter& r, v1::Experiment* out) {
  YAML::Node spec;
  for (const auto& kv : doc) {
    const std::string key = kv.first.Scalar();
    r.Remember(key, kv.first.Mark());
    if (key == "apiVersion" || key == "kind") continue;
    if (key == "metadata") {
      if (!kv.second.IsMap()) {
        r.Error(kv.second, "metadata", "expected a mapping, got " + NodeKind(kv.second));
        continue;
      }
      for (const auto& m : kv.second) {
        const std::string mk = m.first.Scalar();
        const std::string path = "metadata." + mk;
        r.Remember(path, m.first.Mark());
        if (mk == "name" || mk == "description") {
          if (!m.second.IsScalar()) {
            r.Error(m.second, path, "expected a string, got " + NodeKind(m.second));
          } else if (mk == "name") {
            out->set_name(m.second.Scalar());
          } else {
            out->set_description(m.second.Scalar());
          }
        } else {
          r.Error(m.first, path, "unknown field; known fields: name, description");
        }
      }
    } else if (key == "spec") {
      spec = kv.second;
    } else {
      r.Error(kv.first, key, "unknown field; known fields: apiVersion, kind, metadata, spec");
    }
  }
  if (out->name().empty()) r.Error(doc.Mark(), "metadata.name", "required");
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
        {"source_kind", "set by the loader"},
        {"source", "set by the loader"}}},
      {v1::FaultSpec::descriptor()->full_name(),
       {{"duration", "write the duration on the step"},
        {"seed", "fault seeds derive from the experiment's seed"}}},
  };
  ReadMessage(spec, out, "spec", r, kForbidden);
}

}  // namespace faultline::experiments::internal
