#include "experiments/yaml_proto.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "faults/core/duration.h"

namespace faultline::experiments {

namespace pb = google::protobuf;

std::string Diagnostic::ToString() const {
  std::ostringstream o;
  o << file << ":" << line << ":" << column << ": ";
  if (!path.empty()) o << path << ": ";
  o << message;
  return o.str();
}

std::string FormatDiagnostics(const Diagnostics& d) {
  std::string out;
  for (const auto& x : d) {
    if (!out.empty()) out += "\n";
    out += x.ToString();
  }
  return out;
}

void Reporter::Error(const YAML::Mark& at, std::string path, std::string message) {
  Diagnostic d;
  d.file = file_;
  // yaml-cpp counts from 0 and uses -1 for nodes built in code (no position).
  d.line = at.line >= 0 ? at.line + 1 : 0;
  d.column = at.column >= 0 ? at.column + 1 : 0;
  d.path = std::move(path);
  d.message = std::move(message);
  diagnostics_.push_back(std::move(d));
}

void Reporter::Note(const YAML::Node& at, std::string path, std::string message) {
  const YAML::Mark m = at.Mark();
  notes_.push_back({file_, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0,
                    std::move(path), std::move(message)});
}

YAML::Mark Reporter::Where(const std::string& path) const {
  std::string p = path;
  while (!p.empty()) {
    auto it = marks_.find(p);
    if (it != marks_.end()) return it->second;
    auto cut = p.find_last_of(".[");
    if (cut == std::string::npos) break;
    p.resize(cut);
  }
  return YAML::Mark::null_mark();
}

std::string Reporter::Resolve(const std::string& path) const {
  // Longest alias that is the path or one of its parents.
  std::string p = path;
  while (!p.empty()) {
    auto it = aliases_.find(p);
    if (it != aliases_.end()) return it->second + path.substr(p.size());
    auto cut = p.find_last_of(".[");
    if (cut == std::string::npos) break;
    p.resize(cut);
  }
  return path;
}

void Reporter::ErrorAt(const std::string& path, std::string message) {
  std::string p = Resolve(path);
  Error(Where(p), p, std::move(message));
}

std::string NodeKind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "an undefined node";
  }
}

namespace {

// The name users write: lowerCamel, as Kubernetes manifests do.
std::string YamlName(const pb::FieldDescriptor* f) { return f->json_name(); }

const pb::FieldDescriptor* FindField(const pb::Descriptor* d, std::string_view key) {
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (f->name() == key || f->json_name() == key) return f;
  }
  return nullptr;
}

std::string KnownFields(const pb::Descriptor* d, const ForbiddenFields& forbidden) {
  std::string out;
  auto fb = forbidden.find(d->full_name());
  for (int i = 0; i < d->field_count(); ++i) {
    if (fb != forbidden.end() && fb->second.count(d->field(i)->name())) continue;
    if (!out.empty()) out += ", ";
    out += YamlName(d->field(i));
  }
  return out;
}

std::string EnumValueName(std::string_view text) {
  std::string s(text);
  for (auto& c : s)
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool IsPlaceholder(const pb::EnumValueDescriptor* v) {
  const std::string& n = v->name();
  return n.size() >= 12 && n.compare(n.size() - 12, 12, "_UNSPECIFIED") == 0;
}

std::string EnumChoices(const pb::EnumDescriptor* e) {
  std::string out;
  for (int i = 0; i < e->value_count(); ++i) {
    if (IsPlaceholder(e->value(i))) continue;
    std::string n = e->value(i)->name();
    for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

bool IsPercentField(const pb::FieldDescriptor* f) {
  const std::string& n = f->name();
  return n == "percent" || n == "correlation" ||
         (n.size() > 8 && n.compare(n.size() - 8, 8, "_percent") == 0);
}

template <typename T>
bool ParseInt(const std::string& s, T* out) {
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (b != e && *b == '+') ++b;
  auto [p, ec] = std::from_chars(b, e, *out);
  return ec == std::errc() && p == e && b != e;
}

bool ParseDouble(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno != 0 || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

// Converts one scalar for field `f` and stores it (adds it, for a repeated field).
bool StoreScalar(pb::Message* msg, const pb::FieldDescriptor* f, const std::string& text,
                 const YAML::Mark& where, const std::string& path, Reporter& r) {
  const auto* refl = msg->GetReflection();
  const bool rep = f->is_repeated();
  auto bad = [&](const std::string& what) {
    r.Error(where, path, what);
    return false;
  };
  auto range_check = [&](double v) {
    if (IsPercentField(f) && (v < 0 || v > 100)) {
      bad("must be a percent within 0..100, got " + text);
      return false;
    }
    return true;
  };
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!ParseInt(text, &v)) return bad("expected an integer (32-bit), got '" + text + "'");
      if (!range_check(v)) return false;
      rep ? refl->AddInt32(msg, f, v) : refl->SetInt32(msg, f, v);
      return true;
    }
    case pb::FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!ParseInt(text, &v)) return bad("expected an integer, got '" + text + "'");
      if (!range_check(static_cast<double>(v))) return false;
      rep ? refl->AddInt64(msg, f, v) : refl->SetInt64(msg, f, v);
      return true;
    }
    case pb::FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v;
      if (!ParseInt(text, &v)) {
        return bad("expected a non-negative integer (32-bit), got '" + text + "'");
      }
      if (!range_check(v)) return false;
      rep ? refl->AddUInt32(msg, f, v) : refl->SetUInt32(msg, f, v);
      return true;
    }
    case pb::FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v;
      if (!ParseInt(text, &v)) return bad("expected a non-negative integer, got '" + text + "'");
      if (!range_check(static_cast<double>(v))) return false;
      rep ? refl->AddUInt64(msg, f, v) : refl->SetUInt64(msg, f, v);
      return true;
    }
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    case pb::FieldDescriptor::CPPTYPE_FLOAT: {
      double v;
      if (!ParseDouble(text, &v)) return bad("expected a number, got '" + text + "'");
      if (!range_check(v)) return false;
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE) {
        rep ? refl->AddDouble(msg, f, v) : refl->SetDouble(msg, f, v);
      } else {
        rep ? refl->AddFloat(msg, f, static_cast<float>(v))
            : refl->SetFloat(msg, f, static_cast<float>(v));
      }
      return true;
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL: {
      std::string l = text;
      for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (l != "true" && l != "false") return bad("expected true or false, got '" + text + "'");
      rep ? refl->AddBool(msg, f, l == "true") : refl->SetBool(msg, f, l == "true");
      return true;
    }
    case pb::FieldDescriptor::CPPTYPE_STRING:
      rep ? refl->AddString(msg, f, text) : refl->SetString(msg, f, text);
      return true;
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const auto* v = f->enum_type()->FindValueByName(EnumValueName(text));
      if (v == nullptr || IsPlaceholder(v)) {
        return bad("unknown value '" + text + "'; expected one of: " + EnumChoices(f->enum_type()));
      }
      rep ? refl->AddEnum(msg, f, v) : refl->SetEnum(msg, f, v);
      return true;
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return bad("internal: not a scalar field");
}

bool IsDuration(const pb::FieldDescriptor* f) {
  return f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE &&
         f->message_type()->full_name() == pb::Duration::descriptor()->full_name();
}

bool StoreDuration(pb::Message* target, const std::string& text, const YAML::Mark& where,
                   const std::string& path, Reporter& r, bool signed_ok = false) {
  std::string why;
  auto d = faults::ParseDuration(text, &why);
  if (!d) {
    r.Error(where, path, "bad duration '" + text + "': " + why);
    return false;
  }
  if (d->count() < 0 && !signed_ok) {
    r.Error(where, path, "must not be negative, got '" + text + "'");
    return false;
  }
  auto* dur = dynamic_cast<pb::Duration*>(target);
  if (dur != nullptr) {
    faults::ToProto(*d, dur);
  } else {
    // A dynamic message (never in this build, but keep reflection honest).
    pb::Duration tmp;
    faults::ToProto(*d, &tmp);
    target->CopyFrom(tmp);
  }
  return true;
}

// Reads one value (not a list element container) for field `f`.
bool ReadValue(const YAML::Node& node, pb::Message* msg, const pb::FieldDescriptor* f,
               const YAML::Mark& where, const std::string& path, Reporter& r,
               const ForbiddenFields& forbidden) {
  const auto* refl = msg->GetReflection();
  if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
    if (IsDuration(f)) {
      if (!node.IsScalar()) {
        r.Error(where, path, "expected a duration like \"100ms\", got " + NodeKind(node));
        return false;
      }
      pb::Message* d = f->is_repeated() ? refl->AddMessage(msg, f) : refl->MutableMessage(msg, f);
      // A clock offset is the one signed duration: negative steps the clock back.
      return StoreDuration(d, node.Scalar(), where, path, r,
                           f->full_name() == "faultline.v1.TimeFault.offset");
    }
    if (!node.IsMap() && !node.IsNull()) {
      r.Error(where, path, "expected a mapping, got " + NodeKind(node));
      return false;
    }
    pb::Message* sub = f->is_repeated() ? refl->AddMessage(msg, f) : refl->MutableMessage(msg, f);
    size_t before = r.error_count();
    ReadMessage(node, sub, path, r, forbidden);
    return r.error_count() == before;
  }
  if (!node.IsScalar()) {
    r.Error(where, path, "expected a scalar, got " + NodeKind(node));
    return false;
  }
  return StoreScalar(msg, f, node.Scalar(), where, path, r);
}

bool ReadField(const YAML::Node& value, pb::Message* msg, const pb::FieldDescriptor* f,
               const YAML::Mark& where, const std::string& path, Reporter& r,
               const ForbiddenFields& forbidden) {
  const auto* refl = msg->GetReflection();
  if (f->is_map()) {
    if (!value.IsMap()) {
      r.Error(where, path, "expected a mapping, got " + NodeKind(value));
      return false;
    }
    bool ok = true;
    const auto* key_f = f->message_type()->map_key();
    const auto* val_f = f->message_type()->map_value();
    for (const auto& kv : value) {
      std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
      std::string p = path + "." + key;
      r.Remember(p, kv.first.Mark());
      if (!kv.first.IsScalar()) {
        r.Error(kv.first, path, "map keys must be scalars");
        ok = false;
        continue;
      }
      pb::Message* entry = refl->AddMessage(msg, f);
      ok &= StoreScalar(entry, key_f, key, kv.first.Mark(), p, r);
      ok &= ReadValue(kv.second, entry, val_f, kv.second.Mark(), p, r, forbidden);
    }
    return ok;
  }
  if (f->is_repeated()) {
    if (!value.IsSequence()) {
      r.Error(where, path, "expected a list, got " + NodeKind(value));
      return false;
    }
    bool ok = true;
    for (size_t i = 0; i < value.size(); ++i) {
      std::string p = path + "[" + std::to_string(i) + "]";
      r.Remember(p, value[i].Mark());
      ok &= ReadValue(value[i], msg, f, value[i].Mark(), p, r, forbidden);
    }
    return ok;
  }
  if (value.IsNull() && f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) {
    r.Error(where, path, "missing value");
    return false;
  }
  return ReadValue(value, msg, f, where, path, r, forbidden);
}

}  // namespace

void ReadMessage(const YAML::Node& node, pb::Message* msg, const std::string& path, Reporter& r,
                 const ForbiddenFields& forbidden) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    r.Error(node, path, "expected a mapping, got " + NodeKind(node));
    return;
  }
  const auto* d = msg->GetDescriptor();
  auto fb = forbidden.find(d->full_name());
  std::map<const pb::OneofDescriptor*, std::string> oneof_seen;
  std::map<const pb::FieldDescriptor*, std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      r.Error(kv.first, path, "keys must be scalars");
      continue;
    }
    const std::string key = kv.first.Scalar();
    const std::string p = path.empty() ? key : path + "." + key;
    r.Remember(p, kv.first.Mark());
    const auto* f = FindField(d, key);
    if (f == nullptr) {
      r.Error(kv.first, p, "unknown field; known fields: " + KnownFields(d, forbidden));
      continue;
    }
    if (fb != forbidden.end()) {
      auto why = fb->second.find(f->name());
      if (why != fb->second.end()) {
        r.Error(kv.first, p, "not allowed here: " + why->second);
        continue;
      }
    }
    if (auto s = seen.find(f); s != seen.end()) {
      r.Error(kv.first, p, "duplicate field (also written as '" + s->second + "')");
      continue;
    }
    seen[f] = key;
    if (const auto* o = f->real_containing_oneof()) {
      auto [it, fresh] = oneof_seen.emplace(o, key);
      if (!fresh) {
        r.Error(kv.first, p,
                "only one of the '" + o->name() + "' fields may be set; '" + it->second +
                    "' is already set");
        continue;
      }
    }
    ReadField(kv.second, msg, f, kv.second.Mark(), p, r, forbidden);
  }
}

bool SetField(pb::Message* msg, std::string_view field_name, const YAML::Node& value,
              const YAML::Mark& where, const std::string& path, Reporter& r) {
  const auto* f = msg->GetDescriptor()->FindFieldByName(std::string(field_name));
  if (f == nullptr) {
    r.Error(where, path,
            "not supported by this build: " + msg->GetDescriptor()->full_name() +
                " has no field '" + std::string(field_name) + "' (" +
                msg->GetDescriptor()->file()->name() + ")");
    return false;
  }
  if (f->is_repeated() && !f->is_map() && value.IsScalar()) {
    // A single value where the fault takes a list.
    return ReadValue(value, msg, f, where, path, r, {});
  }
  return ReadField(value, msg, f, where, path, r, {});
}

bool SetFieldText(pb::Message* msg, std::string_view field_name, const std::string& value,
                  const YAML::Mark& where, const std::string& path, Reporter& r) {
  return SetField(msg, field_name, YAML::Node(value), where, path, r);
}

}  // namespace faultline::experiments
