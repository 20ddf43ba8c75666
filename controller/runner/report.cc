#include "controller/runner/report.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace faultline::controller {
namespace {

std::string Fmt(double v, int prec = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

std::string IsoTime(double unix_s) {
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Fixed colours for leaders and windows: the same member always gets the same colour.
const char* Colour(size_t i) {
  static const char* kColours[] = {"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1",
                                   "#76b7b2", "#edc948", "#ff9da7", "#9c755f"};
  return kColours[i % 8];
}

// A failed watch guarantee's findings (controller/verify/watch_checks.h) as a table: which
// watcher on which member, at which revision, and the events involved.
std::string RenderWatchFindings(const CheckOutcome& c) {
  if (c.passed || !c.evidence.is_object() || !c.evidence.contains("examples") ||
      !c.evidence["examples"].is_array()) {
    return "";
  }
  std::ostringstream h;
  size_t rows = 0;
  for (const auto& f : c.evidence["examples"]) {
    if (!f.is_object() || !f.contains("guarantee")) continue;
    if (rows++ == 0) {
      h << "<table><tr><th>guarantee</th><th>watcher</th><th>member</th><th>revision</th>"
        << "<th>finding</th><th>events</th></tr>\n";
    }
    std::string events;
    if (f.contains("events") && f["events"].is_array()) {
      for (const auto& e : f["events"]) {
        if (!e.is_object()) continue;
        events += e.value("type", "?") + " " + e.value("key", std::string()) + " @" +
                  std::to_string(e.value("revision", int64_t{0}));
        if (e.contains("proof")) events += " (" + e.value("proof", std::string()) + ")";
        events += "\n";
      }
    }
    h << "<tr><td>" << XmlEscape(f.value("guarantee", std::string())) << "</td><td>"
      << XmlEscape(f.value("watcher", std::string())) << "</td><td>"
      << XmlEscape(f.value("member", std::string())) << "</td><td>"
      << f.value("revision", int64_t{0}) << "</td><td>"
      << XmlEscape(f.value("message", std::string())) << "</td><td><pre>" << XmlEscape(events)
      << "</pre></td></tr>\n";
  }
  if (rows > 0) h << "</table>\n";
  return h.str();
}

// Every exit the liveness check saw (its evidence's members): who, when, how, whether a fault or
// the agent meant it, and for the others the panic/fatal lines the process wrote.
std::string RenderLivenessExits(const CheckOutcome& c) {
  if (c.name != "LIVENESS" || !c.evidence.is_object() || !c.evidence.contains("members") ||
      !c.evidence["members"].is_object()) {
    return "";
  }
  std::ostringstream h;
  size_t rows = 0;
  for (const auto& [member, m] : c.evidence["members"].items()) {
    if (!m.is_object() || !m.contains("exits") || !m["exits"].is_array()) continue;
    for (const auto& x : m["exits"]) {
      if (!x.is_object()) continue;
      if (rows++ == 0) {
        h << "<table><tr><th>member/process</th><th>at</th><th>pid</th><th>cause</th>"
          << "<th>verdict</th><th>first panic/fatal lines</th></tr>\n";
      }
      const bool meant = x.value("expected", false);
      std::string lines;
      if (x.contains("fatal_lines") && x["fatal_lines"].is_array()) {
        for (const auto& l : x["fatal_lines"]) {
          if (l.is_string()) lines += l.get<std::string>() + "\n";
        }
      }
      h << "<tr><td>" << XmlEscape(member) << "</td><td>" << XmlEscape(x.value("at", std::string()))
        << "</td><td>" << x.value("pid", 0) << "</td><td>"
        << XmlEscape(x.value("cause", std::string())) << "</td><td"
        << (meant ? ">meant by " + XmlEscape(x.value("expected_by", std::string()))
                  : " class=\"fail\">nobody meant it")
        << "</td><td><pre>" << XmlEscape(lines) << "</pre></td></tr>\n";
    }
  }
  if (rows > 0) h << "</table>\n";
  return h.str();
}

// One op of a failing linearizability window, as the check's evidence gives it.
struct WindowOp {
  int64_t id = 0, client = 0, invoke = 0, ret = 0;
  std::string type, outcome, what;
  bool failing = false, context = false;
  size_t place = 0;  // in the longest linearization, 1-based; 0: not in it
};

std::string Micros(int64_t ns) { return Fmt(double(ns) / 1000.0, 0) + "µs"; }

// What the op did, short: "put v3 @ 12", "get → v3 @ 11 (store 14)", "cas v2→v5 failed".
std::string DescribeWindowOp(const nlohmann::json& j) {
  std::string type = j.value("type", "?"), outcome = j.value("outcome", "?");
  std::string s = type;
  if (type == "put") s += " " + j.value("value", std::string());
  if (type == "cas") {
    s += " " +
         (j.contains("expect") && j["expect"].is_string() ? j["expect"].get<std::string>()
                                                          : std::string("absent")) +
         "→" + j.value("value", std::string());
  }
  if (outcome != "ok") return s + " (" + outcome + ")";
  if (type == "get") {
    s += j.value("found", false) ? " → " + j.value("read_value", std::string()) + " @ " +
                                       std::to_string(j.value("read_mod_revision", int64_t{0}))
                                 : std::string(" → absent");
    return s + " (store " + std::to_string(j.value("revision", int64_t{0})) + ")";
  }
  if (type == "cas") s += j.value("succeeded", false) ? " ok" : " failed";
  if (type == "delete") s += " deleted " + std::to_string(j.value("deleted", int64_t{0}));
  return s + " @ " + std::to_string(j.value("revision", int64_t{0}));
}

// The ops of each failing key as a time chart (one row per client, a bar from invocation to
// return) and a table, so a reader sees which op no order explains and what it overlapped.
std::string RenderLinearizabilityFailures(const CheckOutcome& c) {
  if (!c.evidence.is_object() || !c.evidence.contains("failures") ||
      !c.evidence["failures"].is_array()) {
    return "";
  }
  std::ostringstream h;
  for (const auto& f : c.evidence["failures"]) {
    if (!f.is_object() || !f.contains("window") || !f["window"].is_array() || f["window"].empty()) {
      continue;
    }
    const int64_t failing = f.value("failing_op", int64_t{-1});
    const size_t context = f.value("context_ops", size_t{0});
    std::map<int64_t, size_t> place;
    if (f.contains("linearized") && f["linearized"].is_array()) {
      for (size_t i = 0; i < f["linearized"].size(); ++i) {
        if (f["linearized"][i].is_number_integer())
          place[f["linearized"][i].get<int64_t>()] = i + 1;
      }
    }
    std::vector<WindowOp> ops;
    int64_t t0 = std::numeric_limits<int64_t>::max(), t1 = std::numeric_limits<int64_t>::min();
    for (size_t i = 0; i < f["window"].size(); ++i) {
      const auto& j = f["window"][i];
      if (!j.is_object()) continue;
      WindowOp o;
      o.id = j.value("id", int64_t{0});
      o.client = j.value("client", int64_t{0});
      o.invoke = j.value("invoke_ns", int64_t{0});
      o.ret = std::max(o.invoke, j.value("return_ns", o.invoke));
      o.type = j.value("type", "?");
      o.outcome = j.value("outcome", "?");
      o.what = DescribeWindowOp(j);
      o.failing = o.id == failing;
      o.context = i < context;
      o.place = place.count(o.id) ? place[o.id] : 0;
      t0 = std::min(t0, o.invoke);
      t1 = std::max(t1, o.ret);
      ops.push_back(o);
    }
    if (ops.empty()) continue;
    std::vector<int64_t> clients;
    for (const auto& o : ops) clients.push_back(o.client);
    std::sort(clients.begin(), clients.end());
    clients.erase(std::unique(clients.begin(), clients.end()), clients.end());
    const double width = 960, left = 80, right = 20, top = 28, row = 34;
    const double plot = width - left - right;
    const double span = double(std::max<int64_t>(t1 - t0, 1));
    auto X = [&](int64_t t) { return left + plot * double(t - t0) / span; };
    const double height = top + row * double(clients.size()) + 10;
    h << "<h3>key " << XmlEscape(f.value("key", std::string())) << "</h3>\n<p>"
      << XmlEscape(f.value("explanation", std::string())) << "</p>\n";
    h << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\""
      << Fmt(height) << "\" font-family=\"sans-serif\" font-size=\"10\" class=\"history\">\n";
    h << "<text x=\"" << left << "\" y=\"12\">time from " << Micros(0) << " to " << Micros(t1 - t0)
      << "; red: the op no linearization reaches, grey: earlier context, hatched: unknown "
         "outcome, #n: place in the longest linearization</text>\n";
    h << "<defs><pattern id=\"unknown\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
         "patternTransform=\"rotate(45)\"><rect width=\"3\" height=\"6\" fill=\"#bbb\"/>"
         "</pattern></defs>\n";
    for (size_t ci = 0; ci < clients.size(); ++ci) {
      double y = top + row * double(ci);
      h << "<text x=\"" << left - 6 << "\" y=\"" << Fmt(y + 22) << "\" text-anchor=\"end\">client "
        << clients[ci] << "</text>\n";
      h << "<line x1=\"" << left << "\" x2=\"" << width - right << "\" y1=\"" << Fmt(y + row - 2)
        << "\" y2=\"" << Fmt(y + row - 2) << "\" stroke=\"#eee\"/>\n";
    }
    for (const auto& o : ops) {
      size_t ci = std::lower_bound(clients.begin(), clients.end(), o.client) - clients.begin();
      double y = top + row * double(ci);
      double x0 = X(o.invoke), x1 = std::max(X(o.ret), x0 + 2);
      std::string fill = o.outcome != "ok" ? "url(#unknown)"
                         : o.context       ? "#ccc"
                         : o.type == "get" ? "#4e79a7"
                                           : "#f28e2b";
      h << "<rect class=\"op\" data-op=\"" << o.id << "\" x=\"" << Fmt(x0) << "\" y=\""
        << Fmt(y + 14) << "\" width=\"" << Fmt(x1 - x0) << "\" height=\"12\" fill=\"" << fill
        << "\" stroke=\"" << (o.failing ? "#c0392b" : "#555") << "\" stroke-width=\""
        << (o.failing ? 3 : 0.5) << "\"><title>op " << o.id << ": " << XmlEscape(o.what) << ", "
        << Micros(o.invoke - t0) << " → " << Micros(o.ret - t0) << "</title></rect>\n";
      h << "<text x=\"" << Fmt(x0) << "\" y=\"" << Fmt(y + 11) << "\""
        << (o.failing ? " fill=\"#c0392b\" font-weight=\"bold\"" : "") << ">"
        << (o.place ? "#" + std::to_string(o.place) + " " : "") << XmlEscape(o.what) << "</text>\n";
    }
    h << "</svg>\n";
    h << "<table><tr><th></th><th>op</th><th>client</th><th>what</th><th>invoked</th>"
         "<th>returned</th><th>outcome</th><th>order</th></tr>\n";
    for (const auto& o : ops) {
      h << "<tr" << (o.failing ? " class=\"fail\"" : "") << "><td>"
        << (o.failing   ? "cannot be linearized"
            : o.context ? "context"
                        : "")
        << "</td><td>" << o.id << "</td><td>" << o.client << "</td><td>" << XmlEscape(o.what)
        << "</td><td>" << Micros(o.invoke - t0) << "</td><td>" << Micros(o.ret - t0) << "</td><td>"
        << XmlEscape(o.outcome) << "</td><td>" << (o.place ? "#" + std::to_string(o.place) : "")
        << "</td></tr>\n";
    }
    h << "</table>\n";
  }
  return h.str();
}

// One row per delay fault window: how late its releases went out. A delay that was not the
// configured one changes what the experiment tested, so rows past 2 ms at p99 (or 10 ms at most)
// are marked.
std::string RenderDelayAccuracy(const RunResult& r) {
  std::ostringstream h;
  bool any = false;
  for (const auto& w : r.windows) {
    auto get = [&](const char* k) {
      auto it = w.counters.find(k);
      return it == w.counters.end() ? int64_t{-1} : it->second;
    };
    const int64_t n = get("late_samples"), p50 = get("late_p50_us"), p99 = get("late_p99_us"),
                  max = get("late_max_us"), rt = get("release_realtime");
    if (n < 0 || p99 < 0) continue;
    if (!any) {
      h << "<h2>Delay accuracy</h2>\n<p>How late each delay fault released what it held "
        << "(replies, packets) beyond the configured delay, as its agent measured it.</p>\n"
        << "<table><tr><th>step</th><th>where</th><th>fault</th><th>releases</th>"
        << "<th>late p50</th><th>late p99</th><th>late max</th><th>release thread</th></tr>\n";
      any = true;
    }
    const bool off = p99 > 2000 || max > 10000;
    h << "<tr><td>" << XmlEscape(w.step) << "</td><td>"
      << XmlEscape(w.member.empty() ? w.agent : w.member) << "</td><td>"
      << XmlEscape(w.kind + " " + w.fault_id) << "</td><td>" << n << "</td><td>"
      << Fmt(double(p50) / 1000, 2) << " ms</td><td" << (off ? " class=\"fail\"" : "") << ">"
      << Fmt(double(p99) / 1000, 2) << " ms</td><td" << (off ? " class=\"fail\"" : "") << ">"
      << Fmt(double(max) / 1000, 2) << " ms</td><td>"
      << (rt == 1   ? "real-time"
          : rt == 0 ? "not real-time (fallback)"
                    : "?")
      << "</td></tr>\n";
  }
  if (any) h << "</table>\n";
  return h.str();
}

}  // namespace

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 forbids most control characters even escaped.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' && c != '\r') {
          out += '?';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string RenderJUnit(const std::vector<RunResult>& runs) {
  std::ostringstream o;
  int tests = 0, failures = 0, errors = 0;
  for (const auto& r : runs) {
    tests += r.checks.empty() ? 1 : int(r.checks.size());
    for (const auto& c : r.checks) failures += c.passed ? 0 : 1;
    if (r.checks.empty() || r.state == v1::Run::ERROR || r.state == v1::Run::CANCELLED) ++errors;
  }
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o << "<testsuites name=\"faultline\" tests=\"" << tests << "\" failures=\"" << failures
    << "\" errors=\"" << errors << "\">\n";
  for (const auto& r : runs) {
    int f = 0;
    for (const auto& c : r.checks) f += c.passed ? 0 : 1;
    bool run_error = r.checks.empty() || r.state == v1::Run::ERROR || r.state == v1::Run::CANCELLED;
    o << "  <testsuite name=\"" << XmlEscape(r.experiment) << "\" tests=\""
      << (r.checks.empty() ? 1 : r.checks.size()) << "\" failures=\"" << f << "\" errors=\""
      << (run_error ? 1 : 0) << "\" time=\"" << Fmt(r.duration_s, 3) << "\" timestamp=\""
      << IsoTime(r.started_at_unix) << "\">\n";
    o << "    <properties>\n"
      << "      <property name=\"run_id\" value=\"" << XmlEscape(r.run_id) << "\"/>\n"
      << "      <property name=\"seed\" value=\"" << r.seed << "\"/>\n"
      << "      <property name=\"source\" value=\"" << XmlEscape(r.source) << "\"/>\n"
      << "      <property name=\"state\" value=\"" << XmlEscape(StateName(r.state)) << "\"/>\n"
      << "    </properties>\n";
    if (run_error) {
      o << "    <testcase classname=\"" << XmlEscape(r.experiment) << "\" name=\"run\">\n"
        << "      <error message=\"" << XmlEscape(StateName(r.state) + ": " + r.error) << "\">"
        << XmlEscape(r.error) << "</error>\n    </testcase>\n";
    }
    for (const auto& c : r.checks) {
      o << "    <testcase classname=\"" << XmlEscape(r.experiment + (c.slo ? ".slo" : ".checks"))
        << "\" name=\"" << XmlEscape(c.name) << "\">\n";
      if (!c.passed) {
        o << "      <failure message=\"" << XmlEscape(c.summary) << "\" type=\""
          << (c.slo ? "slo" : "check") << "\">" << XmlEscape(c.evidence.dump(2)) << "</failure>\n";
      } else {
        o << "      <system-out>" << XmlEscape(c.summary) << "</system-out>\n";
      }
      o << "    </testcase>\n";
    }
    o << "  </testsuite>\n";
  }
  o << "</testsuites>\n";
  return o.str();
}

std::string RenderHtml(const RunResult& r) {
  const double width = 960, left = 110, right = 20;
  const double plot_w = width - left - right;
  double end_t = std::max(1.0, r.duration_s);
  for (const auto& l : r.latency) end_t = std::max(end_t, double(l.second + 1));
  auto X = [&](double t) { return left + plot_w * std::clamp(t / end_t, 0.0, 1.0); };

  std::ostringstream svg;
  // Latency panel.
  const double lat_top = 30, lat_h = 160;
  double max_ms = 1;
  for (const auto& l : r.latency) max_ms = std::max(max_ms, l.p99_ms);
  max_ms = std::pow(10.0, std::ceil(std::log10(max_ms)));
  // A log scale: a paused member turns 2 ms into 2 s, and both must stay readable.
  auto Y = [&](double ms) {
    double lo = std::log10(0.1), hi = std::log10(max_ms);
    double v = std::log10(std::max(ms, 0.1));
    return lat_top + lat_h - lat_h * (v - lo) / (hi - lo);
  };
  // Rows below the latency panel: one per member for the leader, one per fault window lane.
  std::vector<std::string> members = r.members;
  for (const auto& s : r.leaders) {
    for (const auto& [m, _] : s.leader_by_member) {
      if (std::find(members.begin(), members.end(), m) == members.end()) members.push_back(m);
    }
  }
  std::map<std::string, size_t> member_colour;
  for (size_t i = 0; i < members.size(); ++i) member_colour[members[i]] = i;
  std::vector<std::string> lanes;
  for (const auto& w : r.windows) {
    std::string lane = w.member.empty() ? w.agent : w.member;
    if (std::find(lanes.begin(), lanes.end(), lane) == lanes.end()) lanes.push_back(lane);
  }
  const double row_h = 22;
  const double leader_top = lat_top + lat_h + 40;
  const double fault_top = leader_top + row_h * double(members.size()) + 30;
  const double height = fault_top + row_h * double(std::max<size_t>(lanes.size(), 1)) + 40;

  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  svg << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height
      << "\" fill=\"#fff\"/>\n";
  // Fault windows shade every panel, so cause and effect line up.
  for (const auto& w : r.windows) {
    double we = w.end < 0 ? end_t : w.end;
    svg << "<rect x=\"" << Fmt(X(w.start)) << "\" y=\"" << lat_top << "\" width=\""
        << Fmt(std::max(1.0, X(we) - X(w.start))) << "\" height=\"" << Fmt(height - lat_top - 30)
        << "\" fill=\"#e15759\" fill-opacity=\"0.08\"/>\n";
  }
  svg << "<text x=\"" << left << "\" y=\"18\" font-weight=\"bold\">workload latency per second"
      << " (ms, log scale): p50 blue, p99 orange; red bars: seconds with errors</text>\n";
  for (double v = 0.1; v <= max_ms * 1.001; v *= 10) {
    svg << "<line x1=\"" << left << "\" x2=\"" << width - right << "\" y1=\"" << Fmt(Y(v))
        << "\" y2=\"" << Fmt(Y(v)) << "\" stroke=\"#ddd\"/>";
    svg << "<text x=\"" << left - 6 << "\" y=\"" << Fmt(Y(v) + 4) << "\" text-anchor=\"end\">"
        << (v < 1 ? Fmt(v, 1) : Fmt(v, 0)) << "</text>\n";
  }
  auto polyline = [&](bool p99) {
    svg << "<polyline fill=\"none\" stroke=\"" << (p99 ? "#f28e2b" : "#4e79a7")
        << "\" stroke-width=\"1.5\" points=\"";
    for (const auto& l : r.latency) {
      if (l.ops - l.errors <= 0) continue;
      svg << Fmt(X(l.second + 0.5)) << "," << Fmt(Y(p99 ? l.p99_ms : l.p50_ms)) << " ";
    }
    svg << "\"/>\n";
  };
  polyline(false);
  polyline(true);
  for (const auto& l : r.latency) {
    if (l.errors > 0) {
      svg << "<rect x=\"" << Fmt(X(l.second)) << "\" y=\"" << Fmt(lat_top + lat_h - 6)
          << "\" width=\"" << Fmt(std::max(1.0, X(l.second + 1) - X(l.second) - 1))
          << "\" height=\"6\" fill=\"#e15759\"><title>" << l.errors << " errors</title></rect>\n";
    }
  }
  // Time axis.
  double tick = end_t > 600 ? 60 : end_t > 120 ? 20 : end_t > 30 ? 5 : 1;
  for (double t = 0; t <= end_t + 1e-9; t += tick) {
    svg << "<line x1=\"" << Fmt(X(t)) << "\" x2=\"" << Fmt(X(t)) << "\" y1=\"" << lat_top + lat_h
        << "\" y2=\"" << lat_top + lat_h + 4 << "\" stroke=\"#333\"/>";
    svg << "<text x=\"" << Fmt(X(t)) << "\" y=\"" << lat_top + lat_h + 16
        << "\" text-anchor=\"middle\">" << Fmt(t, 0) << "s</text>\n";
  }
  // Leader per member: each sample colours the span until the next one with the colour of the
  // member it called leader (grey: no leader, black: unreachable).
  svg << "<text x=\"" << left << "\" y=\"" << leader_top - 8
      << "\" font-weight=\"bold\">leader as seen by each member</text>\n";
  // Legend: which colour names which leader.
  {
    double lx = left + 230;
    auto swatch = [&](const std::string& fill, const std::string& label) {
      svg << "<rect x=\"" << Fmt(lx) << "\" y=\"" << leader_top - 17 << "\" width=\"10\" "
          << "height=\"10\" fill=\"" << fill << "\"/><text x=\"" << Fmt(lx + 13) << "\" y=\""
          << leader_top - 8 << "\">" << XmlEscape(label) << "</text>\n";
      lx += 20 + 7 * double(label.size());
    };
    for (size_t i = 0; i < members.size(); ++i) swatch(Colour(i), members[i]);
    swatch("#bbb", "no leader");
    swatch("#222", "unreachable");
  }
  for (size_t mi = 0; mi < members.size(); ++mi) {
    double y = leader_top + row_h * double(mi);
    svg << "<text x=\"" << left - 6 << "\" y=\"" << y + 14 << "\" text-anchor=\"end\">"
        << XmlEscape(members[mi]) << "</text>\n";
    for (size_t si = 0; si < r.leaders.size(); ++si) {
      const auto& s = r.leaders[si];
      double t1 = si + 1 < r.leaders.size() ? r.leaders[si + 1].t : std::min(end_t, s.t + 1);
      auto it = s.leader_by_member.find(members[mi]);
      if (it == s.leader_by_member.end()) continue;
      std::string fill = it->second == "?"                 ? "#222"
                         : it->second.empty()              ? "#bbb"
                         : member_colour.count(it->second) ? Colour(member_colour[it->second])
                                                           : "#999";
      svg << "<rect x=\"" << Fmt(X(s.t)) << "\" y=\"" << y + 3 << "\" width=\""
          << Fmt(std::max(0.5, X(t1) - X(s.t))) << "\" height=\"" << row_h - 6 << "\" fill=\""
          << fill << "\"><title>" << XmlEscape(members[mi]) << " at " << Fmt(s.t) << "s: leader "
          << XmlEscape(it->second.empty() ? "none" : it->second) << "</title></rect>\n";
    }
  }
  svg << "<text x=\"" << left << "\" y=\"" << fault_top - 8
      << "\" font-weight=\"bold\">fault windows</text>\n";
  for (size_t li = 0; li < lanes.size(); ++li) {
    double y = fault_top + row_h * double(li);
    svg << "<text x=\"" << left - 6 << "\" y=\"" << y + 14 << "\" text-anchor=\"end\">"
        << XmlEscape(lanes[li]) << "</text>\n";
  }
  for (const auto& w : r.windows) {
    std::string lane = w.member.empty() ? w.agent : w.member;
    size_t li = size_t(std::find(lanes.begin(), lanes.end(), lane) - lanes.begin());
    double y = fault_top + row_h * double(li);
    double we = w.end < 0 ? end_t : w.end;
    svg << "<rect x=\"" << Fmt(X(w.start)) << "\" y=\"" << y + 3 << "\" width=\""
        << Fmt(std::max(1.0, X(we) - X(w.start))) << "\" height=\"" << row_h - 6
        << "\" fill=\"#e15759\"><title>"
        << XmlEscape(w.kind + " " + w.fault_id + " (" + w.step + ")" +
                     (w.accuracy.empty() ? "" : ": " + w.accuracy))
        << "</title></rect>\n";
    svg << "<text x=\"" << Fmt(X(w.start) + 3) << "\" y=\"" << y + 14 << "\" fill=\"#fff\">"
        << XmlEscape(w.kind) << "</text>\n";
  }
  svg << "</svg>\n";

  std::ostringstream h;
  bool ok = r.passed();
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>faultline run "
    << XmlEscape(r.run_id) << "</title>\n<style>body{font-family:sans-serif;margin:20px;"
    << "color:#222}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;"
    << "padding:3px 8px;text-align:left;vertical-align:top;font-size:13px}.pass{color:#2a7d2a;"
    << "font-weight:bold}.fail{color:#c0392b;font-weight:bold}pre{margin:0;font-size:11px;"
    << "white-space:pre-wrap}</style></head><body>\n";
  h << "<h1>" << XmlEscape(r.experiment) << " <span class=\"" << (ok ? "pass" : "fail") << "\">"
    << XmlEscape(StateName(r.state)) << "</span></h1>\n";
  h << "<p>run <code>" << XmlEscape(r.run_id) << "</code>, started " << IsoTime(r.started_at_unix)
    << ", " << Fmt(r.duration_s) << " s, seed " << r.seed << ", from " << XmlEscape(r.source)
    << "</p>\n";
  if (!r.error.empty()) h << "<p class=\"fail\">" << XmlEscape(r.error) << "</p>\n";
  h << "<h2>Timeline</h2>\n" << svg.str();
  h << "<h2>Checks and SLOs</h2>\n<table><tr><th>check</th><th>verdict</th><th>summary</th>"
    << "<th>evidence</th></tr>\n";
  for (const auto& c : r.checks) {
    h << "<tr><td>" << XmlEscape(c.name) << (c.slo ? " (SLO)" : "") << "</td><td class=\""
      << (c.passed ? "pass\">pass" : "fail\">FAIL") << "</td><td>" << XmlEscape(c.summary)
      << "</td><td><pre>" << XmlEscape(c.evidence.dump(1)) << "</pre></td></tr>\n";
  }
  h << "</table>\n";
  h << RenderDelayAccuracy(r);
  for (const auto& c : r.checks) {
    std::string failures = RenderLinearizabilityFailures(c);
    if (!failures.empty()) h << "<h2>" << XmlEscape(c.name) << ": failing ops</h2>\n" << failures;
    std::string watch = RenderWatchFindings(c);
    if (!watch.empty()) h << "<h2>" << XmlEscape(c.name) << ": findings</h2>\n" << watch;
    std::string exits = RenderLivenessExits(c);
    if (!exits.empty()) h << "<h2>" << XmlEscape(c.name) << ": process exits</h2>\n" << exits;
  }
  h << "<h2>Events</h2>\n<table><tr><th>t (s)</th><th>event</th><th>step</th>"
    << "<th>where</th><th>fault</th><th>message</th></tr>\n";
  for (const auto& e : r.events) {
    h << "<tr><td>" << Fmt(e.t, 2) << "</td><td>" << XmlEscape(e.kind) << "</td><td>"
      << XmlEscape(e.step) << "</td><td>" << XmlEscape(e.member.empty() ? e.agent : e.member)
      << "</td><td>" << XmlEscape(e.fault_id) << "</td><td>" << XmlEscape(e.message)
      << "</td></tr>\n";
  }
  h << "</table>\n</body></html>\n";
  return h.str();
}

void WriteReports(const RunResult& r, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  WriteFileAtomic(dir / "report.json", ToJson(r).dump(2) + "\n");
  WriteFileAtomic(dir / "junit.xml", RenderJUnit({r}));
  WriteFileAtomic(dir / "report.html", RenderHtml(r));
}

}  // namespace faultline::controller
