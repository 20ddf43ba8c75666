#include "faults/process/managed_config.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>

#include "faults/core/duration.h"
#include "faults/core/errors.h"

namespace faultline::faults::process {
namespace {

using json = nlohmann::json;
using std::chrono::nanoseconds;

class Fields {
 public:
  FieldErrors errors;
  void Add(const std::string& field, const std::string& reason) {
    errors.push_back({field, reason});
  }
};

bool ParseHostPort(const std::string& text, std::string* host, int* port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return false;
  std::string h = text.substr(0, colon);
  if (h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::string p = text.substr(colon + 1);
  if (p.size() > 5 || !std::all_of(p.begin(), p.end(), ::isdigit)) return false;
  int v = std::stoi(p);
  if (v < 1 || v > 65535) return false;
  *host = h;
  *port = v;
  return true;
}

void ParseDurationField(const json& obj, const char* key, const std::string& path, nanoseconds* out,
                        Fields& f) {
  if (!obj.contains(key)) return;
  const json& v = obj[key];
  if (!v.is_string()) {
    f.Add(path + "." + key, "want a duration string like \"500ms\"");
    return;
  }
  std::string why;
  auto d = ParseDuration(v.get<std::string>(), &why);
  if (!d) {
    f.Add(path + "." + key, why.empty() ? "not a duration" : why);
  } else if (d->count() <= 0) {
    f.Add(path + "." + key, "must be positive");
  } else {
    *out = *d;
  }
}

std::optional<std::string> StringField(const json& obj, const char* key, const std::string& path,
                                       Fields& f, bool absolute_path = false) {
  if (!obj.contains(key)) return std::nullopt;
  const json& v = obj[key];
  if (!v.is_string()) {
    f.Add(path + "." + key, "want a string");
    return std::nullopt;
  }
  std::string s = v.get<std::string>();
  if (absolute_path && (s.empty() || s.front() != '/')) {
    f.Add(path + "." + key, "must be an absolute path, got \"" + s + "\"");
    return std::nullopt;
  }
  return s;
}

std::vector<std::string> ArgvField(const json& obj, const char* key, const std::string& path,
                                   Fields& f) {
  std::vector<std::string> out;
  const json& v = obj[key];
  if (!v.is_array() || v.empty()) {
    f.Add(path + "." + key, "want a non-empty array of strings");
    return out;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) {
      f.Add(path + "." + key + "[" + std::to_string(i) + "]", "want a string");
      continue;
    }
    out.push_back(v[i].get<std::string>());
  }
  if (!out.empty() && (out[0].empty() || out[0].front() != '/')) {
    f.Add(path + "." + key + "[0]",
          "must be an absolute path (no PATH search), got \"" + out[0] + "\"");
  }
  return out;
}

void ParseProbe(const json& r, const std::string& path, ReadinessProbe* probe, Fields& f) {
  if (!r.is_object()) {
    f.Add(path, "want an object with one of tcp, http, command");
    return;
  }
  static const std::set<std::string> known = {"tcp", "http", "command", "interval", "timeout"};
  for (const auto& [k, _] : r.items()) {
    if (!known.count(k))
      f.Add(path + "." + k, "unknown field (known: tcp, http, command, interval, timeout)");
  }
  int kinds = r.contains("tcp") + r.contains("http") + r.contains("command");
  if (kinds != 1) {
    f.Add(path, "want exactly one of tcp, http, command (got " + std::to_string(kinds) + ")");
  }
  if (auto tcp = StringField(r, "tcp", path, f)) {
    probe->kind = ReadinessProbe::Kind::kTcp;
    if (!ParseHostPort(*tcp, &probe->host, &probe->port)) {
      f.Add(path + ".tcp", "want HOST:PORT with port 1..65535, got \"" + *tcp + "\"");
    }
  }
  if (auto http = StringField(r, "http", path, f)) {
    probe->kind = ReadinessProbe::Kind::kHttp;
    probe->url = *http;
    static const std::regex re(R"(http://([^/]+)(/.*)?)");
    std::smatch m;
    std::string hp;
    if (!std::regex_match(*http, m, re)) {
      f.Add(path + ".http", "want http://HOST[:PORT]/PATH, got \"" + *http + "\"");
    } else {
      hp = m[1].str();
      probe->path = m[2].matched ? m[2].str() : "/";
      if (hp.find(':') == std::string::npos || hp.back() == ']') hp += ":80";
      if (!ParseHostPort(hp, &probe->host, &probe->port)) {
        f.Add(path + ".http", "bad host or port in \"" + *http + "\"");
      }
    }
  }
  if (r.contains("command")) {
    probe->kind = ReadinessProbe::Kind::kCommand;
    probe->command = ArgvField(r, "command", path, f);
  }
  ParseDurationField(r, "interval", path, &probe->interval, f);
  ParseDurationField(r, "timeout", path, &probe->timeout, f);
}

ManagedSpec ParseOne(const json& p, const std::string& path, Fields& f) {
  ManagedSpec s;
  if (!p.is_object()) {
    f.Add(path, "want an object");
    return s;
  }
  static const std::set<std::string> known = {
      "name",    "argv",        "env",         "cwd",        "netns", "log",     "restart",
      "backoff", "max_backoff", "stop_signal", "stop_grace", "ready", "overlay", "syscalls"};
  for (const auto& [k, _] : p.items()) {
    if (!known.count(k)) f.Add(path + "." + k, "unknown field");
  }
  static const std::regex name_re("[A-Za-z0-9_.-]+");
  if (!p.contains("name")) {
    f.Add(path + ".name", "required");
  } else if (auto n = StringField(p, "name", path, f)) {
    if (!std::regex_match(*n, name_re)) {
      f.Add(path + ".name", "must match [A-Za-z0-9_.-]+, got \"" + *n + "\"");
    }
    s.name = *n;
  }
  if (!p.contains("argv")) {
    f.Add(path + ".argv", "required");
  } else {
    s.argv = ArgvField(p, "argv", path, f);
  }
  if (p.contains("env")) {
    const json& e = p["env"];
    if (!e.is_object()) {
      f.Add(path + ".env", "want an object of NAME: value strings");
    } else {
      for (const auto& [k, v] : e.items()) {
        if (k.empty() || k.find('=') != std::string::npos) {
          f.Add(path + ".env." + k, "variable name must be non-empty without '='");
        } else if (!v.is_string()) {
          f.Add(path + ".env." + k, "want a string");
        } else {
          s.env[k] = v.get<std::string>();
        }
      }
    }
  }
  if (auto v = StringField(p, "cwd", path, f, true)) s.cwd = *v;
  if (auto v = StringField(p, "netns", path, f, true)) s.netns = *v;
  if (auto v = StringField(p, "log", path, f, true)) s.log = *v;
  if (auto v = StringField(p, "overlay", path, f, true)) s.overlay = *v;
  if (p.contains("syscalls")) {
    const auto& list = p["syscalls"];
    if (!list.is_array()) {
      f.Add(path + ".syscalls", "want a list of syscall names");
    } else {
      for (size_t i = 0; i < list.size(); ++i) {
        if (!list[i].is_string() || list[i].get<std::string>().empty()) {
          f.Add(path + ".syscalls[" + std::to_string(i) + "]", "want a syscall name");
        } else {
          s.syscalls.push_back(list[i].get<std::string>());
        }
      }
    }
  }
  if (auto v = StringField(p, "restart", path, f)) {
    if (*v == "never") {
      s.restart = RestartPolicy::kNever;
    } else if (*v == "on-failure") {
      s.restart = RestartPolicy::kOnFailure;
    } else if (*v == "always") {
      s.restart = RestartPolicy::kAlways;
    } else {
      f.Add(path + ".restart", "want never, on-failure or always, got \"" + *v + "\"");
    }
  }
  ParseDurationField(p, "backoff", path, &s.backoff, f);
  ParseDurationField(p, "max_backoff", path, &s.max_backoff, f);
  ParseDurationField(p, "stop_grace", path, &s.stop_grace, f);
  if (s.max_backoff < s.backoff) f.Add(path + ".max_backoff", "must not be less than backoff");
  if (p.contains("stop_signal")) {
    const json& v = p["stop_signal"];
    if (!v.is_number_integer() || v.get<int>() < 1 || v.get<int>() > 64) {
      f.Add(path + ".stop_signal", "want a signal number 1..64");
    } else {
      s.stop_signal = v.get<int>();
    }
  }
  if (p.contains("ready")) ParseProbe(p["ready"], path + ".ready", &s.ready, f);
  return s;
}

}  // namespace

std::vector<ManagedSpec> ParseManagedConfig(std::string_view json_text) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw ValidationError({{"config", std::string("not valid JSON: ") + e.what()}});
  }
  Fields f;
  const json* list = &doc;
  if (doc.is_object()) {
    for (const auto& [k, _] : doc.items()) {
      if (k != "processes") f.Add(k, "unknown field (want \"processes\")");
    }
    if (!doc.contains("processes")) {
      f.Add("processes", "required");
      throw ValidationError(f.errors);
    }
    list = &doc["processes"];
  }
  if (!list->is_array()) {
    f.Add("processes", "want an array of process objects");
    throw ValidationError(f.errors);
  }
  std::vector<ManagedSpec> out;
  std::set<std::string> names;
  for (size_t i = 0; i < list->size(); ++i) {
    std::string path = "processes[" + std::to_string(i) + "]";
    ManagedSpec s = ParseOne((*list)[i], path, f);
    if (!s.name.empty() && !names.insert(s.name).second) {
      f.Add(path + ".name", "duplicate name \"" + s.name + "\"");
    }
    out.push_back(std::move(s));
  }
  if (!f.errors.empty()) throw ValidationError(f.errors);
  return out;
}

const char* ToString(RestartPolicy p) {
  switch (p) {
    case RestartPolicy::kAlways:
      return "always";
    case RestartPolicy::kOnFailure:
      return "on-failure";
    case RestartPolicy::kNever:
      break;
  }
  return "never";
}

std::string ManagedConfigToJson(const std::vector<ManagedSpec>& specs) {
  json list = json::array();
  for (const auto& s : specs) {
    json p;
    p["name"] = s.name;
    p["argv"] = s.argv;
    if (!s.env.empty()) p["env"] = s.env;
    p["cwd"] = s.cwd;
    if (!s.netns.empty()) p["netns"] = s.netns;
    if (!s.log.empty()) p["log"] = s.log;
    if (!s.overlay.empty()) p["overlay"] = s.overlay;
    if (!s.syscalls.empty()) p["syscalls"] = s.syscalls;
    p["restart"] = ToString(s.restart);
    p["backoff"] = FormatDuration(s.backoff);
    p["max_backoff"] = FormatDuration(s.max_backoff);
    p["stop_signal"] = s.stop_signal;
    p["stop_grace"] = FormatDuration(s.stop_grace);
    const auto& r = s.ready;
    if (r.kind != ReadinessProbe::Kind::kNone) {
      json j;
      if (r.kind == ReadinessProbe::Kind::kTcp) {
        j["tcp"] = (r.host.find(':') != std::string::npos ? "[" + r.host + "]" : r.host) + ":" +
                   std::to_string(r.port);
      } else if (r.kind == ReadinessProbe::Kind::kHttp) {
        j["http"] = r.url;
      } else {
        j["command"] = r.command;
      }
      j["interval"] = FormatDuration(r.interval);
      j["timeout"] = FormatDuration(r.timeout);
      p["ready"] = j;
    }
    list.push_back(p);
  }
  return json{{"processes", list}}.dump(2) + "\n";
}

}  // namespace faultline::faults::process
