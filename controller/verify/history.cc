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
    if (op.conditional) {
      j["succeeded"] = op.succeeded;
      if (!op.succeeded) {
        j["found"] = op.found;
        j["read_value"] = op.read_value;
        j["read_mod_revision"] = op.read_mod_revision;
      }
    }
    if (op.past_revision > 0) {
      j["past_found"] = op.past_found;
      j["past_value"] = op.past_value;
      j["past_mod_revision"] = op.past_mod_revision;
    }
  } else {
    j["error"] = op.error;
  }
  if (op.lease != 0) j["lease"] = op.lease;
  if (op.conditional) {
    j["conditional"] = true;
    j["expect_mod_revision"] = op.expect_mod_revision;
  }
  if (op.past_revision > 0) j["past_revision"] = op.past_revision;
  return j;
}

json WatchEventToJson(const WatchEvent& e) {
  json j = {{"kind", "watch"},
            {"watcher", e.watcher},
            {"revision", e.revision},
            {"key", e.key},
            {"type", e.is_delete ? "delete" : "put"},
            {"value", e.value},
            {"recv_ns", e.recv_ns}};
  if (e.stream >= 0) j["stream"] = e.stream;
  if (e.response >= 0) j["response"] = e.response;
  if (e.create_revision != 0) j["create_revision"] = e.create_revision;
  if (e.version != 0) j["version"] = e.version;
  if (e.has_prev) {
    j["prev_value"] = e.prev_value;
    j["prev_mod_revision"] = e.prev_mod_revision;
  }
  return j;
}

const char* AdminKindName(AdminOp::Kind k) {
  switch (k) {
    case AdminOp::Kind::kCompact:
      return "compact";
    case AdminOp::Kind::kDefragment:
      return "defragment";
    case AdminOp::Kind::kLeaseGrant:
      return "lease_grant";
    case AdminOp::Kind::kLeaseKeepAlive:
      return "lease_keepalive";
    case AdminOp::Kind::kLeaseRevoke:
      return "lease_revoke";
  }
  return "?";
}

std::optional<AdminOp::Kind> ParseAdminKind(const std::string& s) {
  for (auto k : {AdminOp::Kind::kCompact, AdminOp::Kind::kDefragment, AdminOp::Kind::kLeaseGrant,
                 AdminOp::Kind::kLeaseKeepAlive, AdminOp::Kind::kLeaseRevoke}) {
    if (s == AdminKindName(k)) return k;
  }
  return std::nullopt;
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

Outcome ParseOutcomeField(const json& j, size_t line) {
  std::string outcome = Field<std::string>(j, "outcome", line, true);
  auto o = ParseOutcome(outcome);
  if (!o) {
    throw std::runtime_error("line " + std::to_string(line) + ": field \"outcome\": \"" + outcome +
                             "\" is not one of ok, failed, unknown");
  }
  return *o;
}

}  // namespace

void SaveJsonl(const History& h, std::ostream& out) {
  out << json{{"kind", "header"}, {"format", "faultline-history"}, {"version", 1}}.dump() << "\n";
  for (const Op& op : h.ops) out << OpToJson(op).dump() << "\n";
  for (const WatchOpen& w : h.watch_opens) {
    json j = {{"kind", "watch_open"},
              {"watcher", w.watcher},
              {"stream", w.stream},
              {"endpoint", w.endpoint},
              {"key", w.key},
              {"range_end", w.range_end},
              {"start_revision", w.start_revision},
              {"start", w.start},
              {"prev_kv", w.prev_kv},
              {"progress_notify", w.progress_notify},
              {"invoke_ns", w.invoke_ns},
              {"end", w.end},
              {"end_ns", w.end_ns}};
    if (w.compact_revision != 0) j["compact_revision"] = w.compact_revision;
    if (!w.error.empty()) j["error"] = w.error;
    out << j.dump() << "\n";
  }
  for (const WatchEvent& e : h.watch_events) out << WatchEventToJson(e).dump() << "\n";
  for (const WatchProgress& p : h.watch_progress) {
    out << json{{"kind", "watch_progress"}, {"watcher", p.watcher},   {"stream", p.stream},
                {"response", p.response},   {"revision", p.revision}, {"recv_ns", p.recv_ns}}
               .dump()
        << "\n";
  }
  for (const AdminOp& a : h.admin) {
    json j = {{"kind", AdminKindName(a.kind)}, {"client", a.client},
              {"endpoint", a.endpoint},        {"invoke_ns", a.invoke_ns},
              {"return_ns", a.return_ns},      {"outcome", ToString(a.outcome)}};
    if (a.revision != 0) j["revision"] = a.revision;
    if (a.kind == AdminOp::Kind::kCompact) j["physical"] = a.physical;
    if (a.lease != 0) j["lease"] = a.lease;
    if (a.ttl != 0) j["ttl"] = a.ttl;
    if (!a.error.empty()) j["error"] = a.error;
    out << j.dump() << "\n";
  }
  for (const ListOp& l : h.lists) {
    json kvs = json::array();
    for (const auto& kv : l.kvs) {
      kvs.push_back({{"key", kv.key}, {"value", kv.value}, {"mod_revision", kv.mod_revision}});
    }
    json j = {{"kind", "list"},
              {"id", l.id},
              {"client", l.client},
              {"endpoint", l.endpoint},
              {"key", l.key},
              {"range_end", l.range_end},
              {"at_revision", l.at_revision},
              {"invoke_ns", l.invoke_ns},
              {"return_ns", l.return_ns},
              {"outcome", ToString(l.outcome)}};
    if (l.outcome == Outcome::kOk) {
      j["revision"] = l.revision;
      j["kvs"] = kvs;
    } else {
      j["error"] = l.error;
    }
    out << j.dump() << "\n";
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

namespace {

// One record of each kind, from its JSON line (`line` for the error messages).
void CheckHeader(const json& j, size_t line) {
  if (Field<std::string>(j, "format", line, true) != "faultline-history") {
    throw std::runtime_error("line " + std::to_string(line) +
                             ": field \"format\" must be \"faultline-history\"");
  }
  if (Field<int>(j, "version", line, true) != 1) {
    throw std::runtime_error("line " + std::to_string(line) +
                             ": field \"version\": only version 1 is understood");
  }
}

Op OpFromJson(const json& j, size_t line) {
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
  op.outcome = ParseOutcomeField(j, line);
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
  op.lease = Field<int64_t>(j, "lease", line, false);
  op.conditional = Field<bool>(j, "conditional", line, false);
  if (op.conditional) {
    if (op.type != OpType::kDelete) {
      throw std::runtime_error("line " + std::to_string(line) +
                               ": field \"conditional\": only deletes are conditional");
    }
    op.expect_mod_revision = Field<int64_t>(j, "expect_mod_revision", line, true);
    op.succeeded = Field<bool>(j, "succeeded", line, ok);
    op.found = Field<bool>(j, "found", line, false);
    op.read_value = Field<std::string>(j, "read_value", line, false);
    op.read_mod_revision = Field<int64_t>(j, "read_mod_revision", line, false);
  }
  op.past_revision = Field<int64_t>(j, "past_revision", line, false);
  if (op.past_revision > 0) {
    op.past_found = Field<bool>(j, "past_found", line, ok);
    op.past_value = Field<std::string>(j, "past_value", line, false);
    op.past_mod_revision = Field<int64_t>(j, "past_mod_revision", line, false);
  }
  return op;
}

WatchEvent WatchEventFromJson(const json& j, size_t line) {
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
  e.stream = Field<int>(j, "stream", line, false, -1);
  e.response = Field<int64_t>(j, "response", line, false, -1);
  e.create_revision = Field<int64_t>(j, "create_revision", line, false);
  e.version = Field<int64_t>(j, "version", line, false);
  e.has_prev = j.contains("prev_value");
  e.prev_value = Field<std::string>(j, "prev_value", line, false);
  e.prev_mod_revision = Field<int64_t>(j, "prev_mod_revision", line, false);
  return e;
}

WatchOpen WatchOpenFromJson(const json& j, size_t line) {
  WatchOpen w;
  w.watcher = Field<std::string>(j, "watcher", line, true);
  w.stream = Field<int>(j, "stream", line, true);
  w.endpoint = Field<std::string>(j, "endpoint", line, false);
  w.key = Field<std::string>(j, "key", line, true);
  w.range_end = Field<std::string>(j, "range_end", line, false);
  w.start_revision = Field<int64_t>(j, "start_revision", line, true);
  w.start = Field<std::string>(j, "start", line, false);
  w.prev_kv = Field<bool>(j, "prev_kv", line, false);
  w.progress_notify = Field<bool>(j, "progress_notify", line, false);
  w.invoke_ns = Field<int64_t>(j, "invoke_ns", line, false);
  w.end = Field<std::string>(j, "end", line, false, "stopped");
  w.compact_revision = Field<int64_t>(j, "compact_revision", line, false);
  w.error = Field<std::string>(j, "error", line, false);
  w.end_ns = Field<int64_t>(j, "end_ns", line, false);
  return w;
}

WatchProgress WatchProgressFromJson(const json& j, size_t line) {
  WatchProgress p;
  p.watcher = Field<std::string>(j, "watcher", line, true);
  p.stream = Field<int>(j, "stream", line, true);
  p.response = Field<int64_t>(j, "response", line, true);
  p.revision = Field<int64_t>(j, "revision", line, true);
  p.recv_ns = Field<int64_t>(j, "recv_ns", line, false);
  return p;
}

AdminOp AdminFromJson(AdminOp::Kind kind, const json& j, size_t line) {
  AdminOp a;
  a.kind = kind;
  a.client = Field<int>(j, "client", line, false);
  a.endpoint = Field<std::string>(j, "endpoint", line, false);
  a.invoke_ns = Field<int64_t>(j, "invoke_ns", line, true);
  a.return_ns = Field<int64_t>(j, "return_ns", line, true);
  a.outcome = ParseOutcomeField(j, line);
  a.error = Field<std::string>(j, "error", line, false);
  a.revision = Field<int64_t>(j, "revision", line, false);
  a.physical = Field<bool>(j, "physical", line, false);
  a.lease = Field<int64_t>(j, "lease", line, false);
  a.ttl = Field<int64_t>(j, "ttl", line, false);
  return a;
}

ListOp ListFromJson(const json& j, size_t line) {
  ListOp l;
  l.id = Field<int64_t>(j, "id", line, false);
  l.client = Field<int>(j, "client", line, false);
  l.endpoint = Field<std::string>(j, "endpoint", line, false);
  l.key = Field<std::string>(j, "key", line, true);
  l.range_end = Field<std::string>(j, "range_end", line, false);
  l.at_revision = Field<int64_t>(j, "at_revision", line, false);
  l.invoke_ns = Field<int64_t>(j, "invoke_ns", line, true);
  l.return_ns = Field<int64_t>(j, "return_ns", line, true);
  l.outcome = ParseOutcomeField(j, line);
  l.error = Field<std::string>(j, "error", line, false);
  bool ok = l.outcome == Outcome::kOk;
  l.revision = Field<int64_t>(j, "revision", line, ok);
  json kvs = Field<json>(j, "kvs", line, ok, json::array());
  if (!kvs.is_array()) {
    throw std::runtime_error("line " + std::to_string(line) + ": field \"kvs\" must be a list");
  }
  for (const json& kv : kvs) {
    if (!kv.is_object()) {
      throw std::runtime_error("line " + std::to_string(line) +
                               ": field \"kvs\": each entry must be an object");
    }
    l.kvs.push_back({Field<std::string>(kv, "key", line, true),
                     Field<std::string>(kv, "value", line, false),
                     Field<int64_t>(kv, "mod_revision", line, true)});
  }
  return l;
}

History::Final FinalFromJson(const json& j, size_t line) {
  History::Final f;
  f.key = Field<std::string>(j, "key", line, true);
  f.present = Field<bool>(j, "present", line, true);
  f.value = Field<std::string>(j, "value", line, false);
  f.mod_revision = Field<int64_t>(j, "mod_revision", line, false);
  return f;
}

}  // namespace

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
      CheckHeader(j, line);
      h.has_header = true;
    } else if (kind == "op") {
      h.ops.push_back(OpFromJson(j, line));
    } else if (kind == "watch") {
      h.watch_events.push_back(WatchEventFromJson(j, line));
    } else if (kind == "watch_open") {
      h.watch_opens.push_back(WatchOpenFromJson(j, line));
    } else if (kind == "watch_progress") {
      h.watch_progress.push_back(WatchProgressFromJson(j, line));
    } else if (auto admin = ParseAdminKind(kind)) {
      h.admin.push_back(AdminFromJson(*admin, j, line));
    } else if (kind == "list") {
      h.lists.push_back(ListFromJson(j, line));
    } else if (kind == "final") {
      h.final_reads.push_back(FinalFromJson(j, line));
    } else {
      throw std::runtime_error("line " + std::to_string(line) + ": field \"kind\": \"" + kind +
                               "\" is not one of header, op, watch, final, watch_open, "
                               "watch_progress, compact, defragment, lease_grant, "
                               "lease_keepalive, lease_revoke, list");
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
