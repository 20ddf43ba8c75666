#include "controller/verify/history.h"

#include <algorithm>
#include <istream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>

namespace faultline::verify {

using nlohmann::json;

const char* ToString(OpType t) {
  switch (t) {
    case OpType::kPut:
      return "put";
    case OpType::kGet:
      return "get";
    case OpType::kCas:
      return "cas";
    case OpType::kDelete:
      return "delete";
  }
  return "?";
}

const char* ToString(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

std::optional<OpType> ParseOpType(const std::string& s) {
  if (s == "put") return OpType::kPut;
  if (s == "get") return OpType::kGet;
  if (s == "cas") return OpType::kCas;
  if (s == "delete") return OpType::kDelete;
  return std::nullopt;
}

std::optional<Outcome> ParseOutcome(const std::string& s) {
  if (s == "ok") return Outcome::kOk;
  if (s == "failed") return Outcome::kFailed;
  if (s == "unknown") return Outcome::kUnknown;
  return std::nullopt;
}

namespace {

json OpToJson(const Op& op) {
  json j = {{"kind", "op"},
            {"id", op.id},
            {"client", op.client},
            {"endpoint", op.endpoint},
            {"type", ToString(op.type)},
            {"key", op.key},
            {"invoke_ns", op.invoke_ns},
            {"return_ns", op.return_ns},
            {"outcome", ToString(op.outcome)}};
  if (op.type == OpType::kPut || op.type == OpType::kCas) j["value"] = op.value;
  if (op.type == OpType::kCas) {
    j["cas_on"] = op.cas_on == CasOn::kValue ? "value" : "mod_revision";
    j["expect_value"] = op.expect_value;
    j["expect_absent"] = op.expect_absent;
    j["expect_mod_revision"] = op.expect_mod_revision;
  }
  if (op.type == OpType::kGet) j["serializable"] = op.serializable;
  if (op.outcome == Outcome::kOk) {
    j["revision"] = op.revision;
    if (op.type == OpType::kGet) {
      j["found"] = op.found;
      j["read_value"] = op.read_value;
      j["read_mod_revision"] = op.read_mod_revision;
    }
    if (op.type == OpType::kCas) j["succeeded"] = op.succeeded;
    if (op.type == OpType::kDelete) j["deleted"] = op.deleted;
  } else {
    j["error"] = op.error;
  }
  return j;
}

// Reads a field with a type check, so a bad file names the line and the field.
template <typename T>
T Field(const json& j, const char* name, size_t line, bool required, T fallback = T{}) {
  auto it = j.find(name);
  if (it == j.end()) {
    if (required) {
      throw std::runtime_error("line " + std::to_string(line) + ": field \"" + name +
                               "\" is missing");
    }
    return fallback;
  }
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw std::runtime_error("line " + std::to_string(line) + ": field \"" + name +
                             "\" has the wrong type (" + it->type_name() + ")");
  }
}

}  // namespace

void SaveJsonl(const History& h, std::ostream& out) {
  out << json{{"kind", "header"}, {"format", "faultline-history"}, {"version", 1}}.dump() << "\n";
  for (const Op& op : h.ops) out << OpToJson(op).dump() << "\n";
  for (const WatchEvent& e : h.watch_events) {
    out << json{{"kind", "watch"},
                {"watcher", e.watcher},
                {"revision", e.revision},
                {"key", e.key},
                {"type", e.is_delete ? "delete" : "put"},
                {"value", e.value},
                {"recv_ns", e.recv_ns}}
               .dump()
        << "\n";
  }
  for (const History::Final& f : h.final_reads) {
    out << json{{"kind", "final"},
                {"key", f.key},
                {"present", f.present},
                {"value", f.value},
                {"mod_revision", f.mod_revision}}
               .dump()
        << "\n";
  }
}

History LoadJsonl(std::istream& in) {
  History h;
  std::string text;
  size_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {
      throw std::runtime_error("line " + std::to_string(line) + ": not JSON: " + e.what());
    }
    if (!j.is_object()) {
      throw std::runtime_error("line " + std::to_string(line) + ": expected a JSON object");
    }
    std::string kind = Field<std::string>(j, "kind", line, true);
    if (kind == "header") {
      if (Field<std::string>(j, "format", line, true) != "faultline-history") {
        throw std::runtime_error("line " + std::to_string(line) +
                                 ": field \"format\" must be \"faultline-history\"");
      }
      if (Field<int>(j, "version", line, true) != 1) {
        throw std::runtime_error("line " + std::to_string(line) +
                                 ": field \"version\": only version 1 is understood");
      }
      h.has_header = true;
    } else if (kind == "op") {
      Op op;
      op.id = Field<int64_t>(j, "id", line, true);
      op.client = Field<int>(j, "client", line, true);
      op.endpoint = Field<std::string>(j, "endpoint", line, false);
      std::string type = Field<std::string>(j, "type", line, true);
      auto t = ParseOpType(type);
      if (!t) {
        throw std::runtime_error("line " + std::to_string(line) + ": field \"type\": \"" + type +
                                 "\" is not one of put, get, cas, delete");
      }
      op.type = *t;
      op.key = Field<std::string>(j, "key", line, true);
      op.value =
          Field<std::string>(j, "value", line, op.type == OpType::kPut || op.type == OpType::kCas);
      op.invoke_ns = Field<int64_t>(j, "invoke_ns", line, true);
      op.return_ns = Field<int64_t>(j, "return_ns", line, true);
      std::string outcome = Field<std::string>(j, "outcome", line, true);
      auto o = ParseOutcome(outcome);
      if (!o) {
        throw std::runtime_error("line " + std::to_string(line) + ": field \"outcome\": \"" +
                                 outcome + "\" is not one of ok, failed, unknown");
      }
      op.outcome = *o;
      if (op.return_ns < op.invoke_ns) {
        throw std::runtime_error("line " + std::to_string(line) +
                                 ": field \"return_ns\" is before \"invoke_ns\"");
      }
      op.serializable = Field<bool>(j, "serializable", line, false);
      if (op.type == OpType::kCas) {
        std::string on = Field<std::string>(j, "cas_on", line, false, "value");
        if (on != "value" && on != "mod_revision") {
          throw std::runtime_error("line " + std::to_string(line) +
                                   ": field \"cas_on\" must be value or mod_revision");
        }
        op.cas_on = on == "value" ? CasOn::kValue : CasOn::kModRevision;
        op.expect_value = Field<std::string>(j, "expect_value", line, false);
        op.expect_absent = Field<bool>(j, "expect_absent", line, false);
        op.expect_mod_revision = Field<int64_t>(j, "expect_mod_revision", line, false);
      }
      bool ok = op.outcome == Outcome::kOk;
      op.revision = Field<int64_t>(j, "revision", line, ok);
      if (op.type == OpType::kGet) {
        op.found = Field<bool>(j, "found", line, ok);
        op.read_value = Field<std::string>(j, "read_value", line, false);
        op.read_mod_revision = Field<int64_t>(j, "read_mod_revision", line, false);
      }
      if (op.type == OpType::kCas) op.succeeded = Field<bool>(j, "succeeded", line, ok);
      if (op.type == OpType::kDelete) op.deleted = Field<int64_t>(j, "deleted", line, ok);
      op.error = Field<std::string>(j, "error", line, false);
      h.ops.push_back(std::move(op));
    } else if (kind == "watch") {
      WatchEvent e;
      e.watcher = Field<std::string>(j, "watcher", line, true);
      e.revision = Field<int64_t>(j, "revision", line, true);
      e.key = Field<std::string>(j, "key", line, true);
      std::string type = Field<std::string>(j, "type", line, true);
      if (type != "put" && type != "delete") {
        throw std::runtime_error("line " + std::to_string(line) +
                                 ": field \"type\" must be put or delete");
      }
      e.is_delete = type == "delete";
      e.value = Field<std::string>(j, "value", line, false);
      e.recv_ns = Field<int64_t>(j, "recv_ns", line, false);
      h.watch_events.push_back(std::move(e));
    } else if (kind == "final") {
      History::Final f;
      f.key = Field<std::string>(j, "key", line, true);
      f.present = Field<bool>(j, "present", line, true);
      f.value = Field<std::string>(j, "value", line, false);
      f.mod_revision = Field<int64_t>(j, "mod_revision", line, false);
      h.final_reads.push_back(std::move(f));
    } else {
      throw std::runtime_error("line " + std::to_string(line) + ": field \"kind\": \"" + kind +
                               "\" is not one of header, op, watch, final");
    }
  }
  return h;
}

namespace {

std::string EdnString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

void ExportEdn(const History& h, std::ostream& out) {
  struct Event {
    int64_t t;
    bool completion;
    const Op* op;
  };
  std::vector<Event> events;
  events.reserve(h.ops.size() * 2);
  for (const Op& op : h.ops) {
    events.push_back({op.invoke_ns, false, &op});
    events.push_back({op.return_ns, true, &op});
  }
  // Invocations sort before completions at the same instant so no op looks to finish first.
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    if (a.t != b.t) return a.t < b.t;
    return !a.completion && b.completion;
  });
  int64_t index = 0;
  for (const Event& e : events) {
    const Op& op = *e.op;
    std::string type = ":invoke";
    if (e.completion) {
      type = op.outcome == Outcome::kOk       ? ":ok"
             : op.outcome == Outcome::kFailed ? ":fail"
                                              : ":info";
    }
    std::string f, value;
    std::string key = EdnString(op.key);
    switch (op.type) {
      case OpType::kGet:
        f = ":read";
        value = (e.completion && op.outcome == Outcome::kOk && op.found) ? EdnString(op.read_value)
                                                                         : "nil";
        break;
      case OpType::kPut:
        f = ":write";
        value = EdnString(op.value);
        break;
      case OpType::kDelete:
        f = ":write";
        value = "nil";
        break;
      case OpType::kCas:
        f = ":cas";
        value = "[" + (op.expect_absent ? std::string("nil") : EdnString(op.expect_value)) + " " +
                EdnString(op.value) + "]";
        // A cas that found the compare false did not write: Knossos calls that :fail.
        if (e.completion && op.outcome == Outcome::kOk && !op.succeeded) type = ":fail";
        if (op.cas_on == CasOn::kModRevision && e.completion) type = ":info";
        break;
    }
    out << "{:type " << type << ", :f " << f << ", :value [" << key << " " << value
        << "], :process " << op.client << ", :time " << e.t << ", :index " << index++ << "}\n";
  }
}

}  // namespace faultline::verify
