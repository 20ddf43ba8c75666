// chaos-mesh.org/v1alpha1 manifests mapped onto faultline experiments. A chaos-mesh object acts on
// pods chosen by labels; here the same labels choose agents, and "the pod" is the etcd member the
// agent manages. Every spec field is either mapped or reported; nothing is dropped.
#include <google/protobuf/descriptor.h>

#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "experiments/internal.h"
#include "faults/net/addr.h"

namespace faultline::experiments::internal {

namespace {

// The managed process a pod stands for when a manifest names no container.
constexpr const char* kManagedEtcd = "etcd";

std::string Upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Fields chaos-mesh has that faultline cannot honour, with the reason given to the user.
const std::map<std::string, std::string>& KnownUnsupported() {
  static const std::map<std::string, std::string> m = {
      {"containerNames", "faultline acts on the agent's managed etcd, not on containers"},
      {"containerName", "faultline acts on the agent's managed etcd, not on containers"},
      {"remoteCluster", "faultline drives the agents of one controller"},
      {"tcParameter", "write the action's own block (delay, loss, ...)"},
      {"stressngStressors", "stress-ng options are not supported; use stressors.cpu/memory"},
      {"stressImage", "stressors run inside the agent"},
      {"attr", "attribute overrides are not mapped yet"},
      {"mistake", "mistake (data corruption) is not mapped yet"},
  };
  return m;
}

// One chaos-mesh spec mapping. `spec` is the chaos object's spec (for Schedule, the embedded one)
// and `base` its path in the document.
class Mapper {
 public:
  Mapper(const YAML::Node& spec, std::string base, Reporter& r, v1::Experiment* e)
      : spec_(spec), base_(std::move(base)), r_(r), e_(e) {}

  void Map(const std::string& kind);

 private:
  std::string kind_;
  std::string P(const std::string& key) const { return base_ + "." + key; }
  YAML::Node Get(const std::string& key) {
    handled_.insert(key);
    return spec_[key];
  }
  void Handled(const std::string& key) { handled_.insert(key); }
  void ReportUnhandled(const std::string& kind);
  // Marks a path (and its subpaths) as being written at `node`, for later errors.
  void Remember(const std::string& path, const YAML::Node& node) { r_.Remember(path, node.Mark()); }

  void Common(v1::Step* step);
  void Selector(const YAML::Node& node, const std::string& path, v1::TargetSelector* t);
  void Io(v1::Step* step);
  void Net(v1::Step* step);
  void Pod(v1::Step* step);
  void Stress(v1::Step* step);
  void Time(v1::Step* step);
  void MemorySize(v1::StressFault* st, const YAML::Node& v, const std::string& path);

  // Reads a mapping whose keys must all be in `allowed`; calls `on` for each.
  void Block(const YAML::Node& node, const std::string& path,
             const std::map<std::string,
                            std::function<void(const YAML::Node&, const std::string&)>>& allowed);

  // Held const: operator[] on a non-const node would insert the keys it looks up.
  const YAML::Node spec_;
  std::string base_;
  Reporter& r_;
  v1::Experiment* e_;
  std::set<std::string> handled_;
};

void Mapper::Block(
    const YAML::Node& node, const std::string& path,
    const std::map<std::string, std::function<void(const YAML::Node&, const std::string&)>>&
        allowed) {
  if (!node.IsMap()) {
    r_.Error(node, path, "expected a mapping, got " + NodeKind(node));
    return;
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const std::string p = path + "." + key;
    r_.Remember(p, kv.first.Mark());
    auto it = allowed.find(key);
    if (it == allowed.end()) {
      std::string known;
      for (const auto& [k, unused] : allowed) known += (known.empty() ? "" : ", ") + k;
      r_.Error(kv.first, p, "not supported by faultline; supported here: " + known);
      continue;
    }
    it->second(kv.second, p);
  }
}

void Mapper::ReportUnhandled(const std::string& kind) {
  for (const auto& kv : spec_) {
    const std::string key = kv.first.Scalar();
    if (handled_.count(key)) continue;
    const std::string p = P(key);
    auto why = KnownUnsupported().find(key);
    r_.Error(kv.first, p,
             why != KnownUnsupported().end() ? "not supported by faultline: " + why->second
                                             : "unknown or unsupported field for " + kind);
  }
}

void Mapper::Selector(const YAML::Node& node, const std::string& path, v1::TargetSelector* t) {
  Block(node, path,
        {{"labelSelectors",
          [&](const YAML::Node& v, const std::string& p) {
            SetField(t, "match_labels", v, v.Mark(), p, r_);
          }},
         // A Kubernetes namespace has no meaning for agents, but manifests routinely carry the one
         // their pods live in; it narrows nothing here, so only a list is accepted as written.
         {"namespaces", [&](const YAML::Node& v, const std::string& p) {
            if (!v.IsSequence()) r_.Error(v, p, "expected a list, got " + NodeKind(v));
          }}});
}

void Mapper::Common(v1::Step* step) {
  // chaos-mesh 1.x chose one container of the pod (`containerName`); the agent's managed etcd is
  // the pod's only container here, so naming it changes nothing and naming another is an error.
  // PodChaos reads it itself (container-kill names the process to kill).
  if (kind_ != "PodChaos") {
    if (YAML::Node c = Get("containerName")) {
      if (!c.IsScalar() || c.Scalar() != kManagedEtcd) {
        r_.Error(c, P("containerName"),
                 std::string("faultline acts on the agent's managed ") + kManagedEtcd +
                     "; containerName may only name it");
      }
    }
  }
  v1::TargetSelector* t = step->mutable_target();
  const std::string s = "spec.steps[0]";
  if (YAML::Node sel = Get("selector")) {
    Remember(P("selector"), sel);
    Selector(sel, P("selector"), t);
  } else {
    r_.Error(spec_.Mark(), P("selector"), "required (labelSelectors matching agent labels)");
  }
  if (YAML::Node mode = Get("mode")) {
    SetField(t, "mode", mode, mode.Mark(), P("mode"), r_);
    Remember(P("mode"), mode);
  } else {
    r_.Error(spec_.Mark(), P("mode"),
             "required (one, all, fixed, fixed-percent, "
             "random-max-percent)");
  }
  if (YAML::Node value = Get("value")) {
    SetField(t, "value", value, value.Mark(), P("value"), r_);
    Remember(P("value"), value);
  }
  r_.Alias(s + ".target.value", P("value"));
  r_.Alias(s + ".target", P("selector"));
  if (YAML::Node d = Get("duration")) {
    SetField(step, "duration", d, d.Mark(), P("duration"), r_);
    Remember(P("duration"), d);
  }
  // A missing duration is left to the structural check, which knows which faults are instant.
  r_.Alias(s + ".duration", P("duration"));
  r_.Alias(s, base_);
  if (YAML::Node sched = Get("scheduler")) {
    // chaos-mesh 1.x scheduled each chaos object itself; 2.x moved that into the Schedule kind.
    r_.Note(sched, P("scheduler"),
            "chaos-mesh 1.x scheduler read as this experiment's schedule (chaos-mesh 2.x writes "
            "a Schedule)");
    Remember(P("scheduler"), sched);
    Block(sched, P("scheduler"), {{"cron", [&](const YAML::Node& v, const std::string& p) {
                                     SetField(e_->mutable_schedule(), "cron", v, v.Mark(), p, r_);
                                     r_.Alias("spec.schedule.cron", p);
                                   }}});
  }
}

void Mapper::Io(v1::Step* step) {
  v1::IoFault* io = step->mutable_fault()->mutable_io();
  Common(step);
  static const std::map<std::string, std::string> kActions = {
      {"latency", "LATENCY"}, {"fault", "ERRNO"}, {"attroverride", "ATTR"}, {"mistake", "CORRUPT"}};
  YAML::Node action = Get("action");
  std::string a;
  if (!action || !action.IsScalar()) {
    r_.Error(action ? action.Mark() : spec_.Mark(), P("action"), "required: latency or fault");
  } else {
    a = action.Scalar();
    auto it = kActions.find(Lower(a));
    if (it == kActions.end()) {
      r_.Error(action, P("action"),
               "unknown IOChaos action '" + a +
                   "'; expected latency, fault, "
                   "attrOverride or mistake");
    } else {
      SetFieldText(io, "action", it->second, action.Mark(), P("action"), r_);
    }
  }
  std::string volume;
  if (YAML::Node v = Get("volumePath")) {
    SetField(io, "mount", v, v.Mark(), P("volumePath"), r_);
    if (v.IsScalar()) volume = v.Scalar();
    while (volume.size() > 1 && volume.back() == '/') volume.pop_back();
  } else {
    r_.Error(spec_.Mark(), P("volumePath"), "required: the directory whose overlay is used");
  }
  if (YAML::Node v = Get("path"); v && v.IsScalar() && !volume.empty()) {
    // chaos-mesh globs are absolute; the overlay's are relative to its mount.
    std::string glob = v.Scalar();
    if (glob.rfind(volume + "/", 0) == 0) {
      SetFieldText(io, "path", glob.substr(volume.size() + 1), v.Mark(), P("path"), r_);
    } else if (!glob.empty() && glob[0] == '/') {
      r_.Error(v, P("path"), "'" + glob + "' is outside volumePath " + volume);
    } else {
      SetField(io, "path", v, v.Mark(), P("path"), r_);
    }
  } else if (v) {
    SetField(io, "path", v, v.Mark(), P("path"), r_);
  }
  if (YAML::Node v = Get("methods")) SetField(io, "methods", v, v.Mark(), P("methods"), r_);
  if (YAML::Node v = Get("percent")) {
    SetField(io, "percent", v, v.Mark(), P("percent"), r_);
  } else if (io->GetDescriptor()->FindFieldByName("percent") != nullptr) {
    // chaos-mesh's default: every matching operation.
    SetFieldText(io, "percent", "100", spec_.Mark(), P("percent"), r_);
  }
  YAML::Node delay = Get("delay");
  YAML::Node err = Get("errno");
  if (Lower(a) == "latency") {
    if (!delay) r_.Error(spec_.Mark(), P("delay"), "required for action latency");
    if (err) r_.Error(err, P("errno"), "only for action fault");
  } else if (Lower(a) == "fault") {
    if (!err) r_.Error(spec_.Mark(), P("errno"), "required for action fault (e.g. 5 for EIO)");
    if (delay) r_.Error(delay, P("delay"), "only for action latency");
  }
  if (delay) SetField(io, "delay", delay, delay.Mark(), P("delay"), r_);
  if (err) {
    // chaos-mesh writes the errno as a number; the overlay takes weighted names.
    int num = 0;
    const char* name = nullptr;
    if (err.IsScalar() && YAML::convert<int>::decode(err, num) && num > 0 && num < 4096) {
      name = ::strerrorname_np(num);
    }
    if (name == nullptr) {
      r_.Error(err, P("errno"), "expected an errno number (e.g. 5 for EIO, 28 for ENOSPC)");
    } else {
      YAML::Node weights(YAML::NodeType::Sequence);
      YAML::Node one(YAML::NodeType::Map);
      one["name"] = name;
      weights.push_back(one);
      SetField(io, "errnos", weights, err.Mark(), P("errno"), r_);
    }
  }
}

void Mapper::Net(v1::Step* step) {
  v1::NetFault* net = step->mutable_fault()->mutable_net();
  Common(step);
  YAML::Node action = Get("action");
  std::string a = action && action.IsScalar() ? Lower(action.Scalar()) : "";
  static const std::set<std::string> kActions = {"delay",   "loss",      "duplicate",
                                                 "corrupt", "partition", "bandwidth"};
  if (!action) {
    r_.Error(spec_.Mark(), P("action"), "required");
  } else if (!kActions.count(a)) {
    r_.Error(action, P("action"),
             "unsupported NetworkChaos action '" + (action.IsScalar() ? action.Scalar() : "") +
                 "'; expected delay, loss, duplicate, corrupt, partition or bandwidth");
    a.clear();
  }
  // The action's parameter block must be present, and no other action's block.
  for (const std::string block : {"delay", "loss", "duplicate", "corrupt", "bandwidth"}) {
    YAML::Node b = Get(block);
    if (!b) {
      if (block == a) r_.Error(spec_.Mark(), P(block), "required for action " + a);
      continue;
    }
    if (block != a) {
      r_.Error(b, P(block), "only for action " + block);
      continue;
    }
  }
  auto set = [&](const char* field, const YAML::Node& v, const std::string& p) {
    SetField(net, field, v, v.Mark(), p, r_);
  };
  auto text = [&](const char* field, const std::string& value, const YAML::Node& v,
                  const std::string& p) { SetFieldText(net, field, value, v.Mark(), p, r_); };
  const YAML::Mark at = action ? action.Mark() : spec_.Mark();
  if (a == "delay") {
    text("action", "DELAY", action, P("action"));
    YAML::Node b = spec_["delay"];
    bool has_reorder = false;
    Block(b, P("delay"),
          {{"latency", [&](const YAML::Node& v, const std::string& p) { set("delay", v, p); }},
           {"jitter", [&](const YAML::Node& v, const std::string& p) { set("jitter", v, p); }},
           {"correlation",
            [&](const YAML::Node& v, const std::string& p) { set("correlation", v, p); }},
           {"reorder", [&](const YAML::Node& v, const std::string& p) {
              has_reorder = true;
              text("action", "REORDER", v, p);
              Block(v, p,
                    {{"reorder",
                      [&](const YAML::Node& x, const std::string& q) { set("percent", x, q); }},
                     {"gap", [&](const YAML::Node& x, const std::string& q) { set("gap", x, q); }},
                     {"correlation", [&](const YAML::Node& x, const std::string& q) {
                        if (spec_["delay"]["correlation"]) {
                          r_.Error(x, q, "one correlation per fault: set it on delay or reorder");
                        } else {
                          set("correlation", x, q);
                        }
                      }}});
            }}});
    if (b.IsMap() && !b["latency"]) r_.Error(b, P("delay.latency"), "required");
    (void)has_reorder;
  } else if (a == "loss" || a == "duplicate" || a == "corrupt") {
    text("action",
         a == "loss"        ? "LOSS"
         : a == "duplicate" ? "DUPLICATE"
                            : "CORRUPT",
         action, P("action"));
    YAML::Node b = spec_[a];
    Block(b, P(a),
          {{a, [&](const YAML::Node& v, const std::string& p) { set("percent", v, p); }},
           {"correlation",
            [&](const YAML::Node& v, const std::string& p) { set("correlation", v, p); }}});
    if (b.IsMap() && !b[a]) r_.Error(b, P(a + "." + a), "required: the percent of packets");
  } else if (a == "bandwidth") {
    text("action", "BANDWIDTH", action, P("action"));
    YAML::Node b = spec_["bandwidth"];
    Block(
        b, P("bandwidth"),
        {{"rate", [&](const YAML::Node& v, const std::string& p) { set("rate", v, p); }},
         {"limit", [&](const YAML::Node& v, const std::string& p) { set("limit", v, p); }},
         {"buffer", [&](const YAML::Node& v, const std::string& p) { set("burst", v, p); }},
         {"peakrate", [&](const YAML::Node& v, const std::string& p) { set("peakrate", v, p); }}});
    if (b.IsMap() && !b["rate"]) r_.Error(b, P("bandwidth.rate"), "required");
  } else if (a == "partition") {
    text("action", "PARTITION", action, P("action"));
  }
  (void)at;
  if (YAML::Node d = Get("direction")) {
    static const std::map<std::string, std::string> kDir = {
        {"to", "EGRESS"}, {"from", "INGRESS"}, {"both", "BOTH"}};
    auto it = d.IsScalar() ? kDir.find(Lower(d.Scalar())) : kDir.end();
    if (it == kDir.end()) {
      r_.Error(d, P("direction"), "expected to, from or both");
    } else {
      text("direction", it->second, d, P("direction"));
    }
  }
  bool has_peer = false;
  if (YAML::Node t = Get("target")) {
    has_peer = true;
    v1::TargetSelector* peer = step->mutable_peer();
    Block(t, P("target"),
          {{"selector", [&](const YAML::Node& v, const std::string& p) { Selector(v, p, peer); }},
           {"mode", [&](const YAML::Node& v,
                        const std::string& p) { SetField(peer, "mode", v, v.Mark(), p, r_); }},
           {"value", [&](const YAML::Node& v, const std::string& p) {
              SetField(peer, "value", v, v.Mark(), p, r_);
            }}});
    r_.Alias("spec.steps[0].peer", P("target"));
  }
  if (YAML::Node x = Get("externalTargets")) {
    has_peer = true;
    if (!x.IsSequence()) {
      r_.Error(x, P("externalTargets"), "expected a list, got " + NodeKind(x));
    } else {
      for (size_t i = 0; i < x.size(); ++i) {
        const std::string p = P("externalTargets[" + std::to_string(i) + "]");
        const std::string v = x[i].IsScalar() ? x[i].Scalar() : "";
        // The agent takes addresses; resolving names would make the fault depend on DNS.
        std::string why;
        if (!faults::net::ParseCidr(v, &why)) {
          r_.Error(x[i], p,
                   "expected an IPv4 or IPv6 address or CIDR; host names are not supported (" +
                       why + ")");
          continue;
        }
        SetField(net, "to", x[i], x[i].Mark(), p, r_);
      }
    }
  }
  if (YAML::Node d = Get("device")) SetField(net, "device", d, d.Mark(), P("device"), r_);
  if (a == "partition" && !has_peer) {
    r_.Error(spec_.Mark(), P("target"), "a partition needs target or externalTargets");
  }
}

void Mapper::Pod(v1::Step* step) {
  YAML::Node action = Get("action");
  const std::string a = action && action.IsScalar() ? Lower(action.Scalar()) : "";
  // A killed pod comes back (its controller recreates it); a failed pod is unavailable for the
  // duration. The managed etcd behaves the same way under RESTART and PAUSE.
  Common(step);
  v1::ProcessFault* p = step->mutable_fault()->mutable_process();
  std::string managed = kManagedEtcd;
  if (!action) {
    r_.Error(spec_.Mark(), P("action"), "required: pod-kill, pod-failure or container-kill");
  } else if (a == "pod-kill" || a == "container-kill") {
    p->set_action(v1::ProcessFault::RESTART);
    p->set_signal(9);
  } else if (a == "pod-failure") {
    p->set_action(v1::ProcessFault::PAUSE);
  } else {
    r_.Error(action, P("action"),
             "unknown PodChaos action '" + Lower(action.Scalar()) +
                 "'; expected pod-kill, pod-failure or container-kill");
  }
  if (YAML::Node g = Get("gracePeriod")) {
    int64_t secs = 0;
    if (a != "pod-kill") {
      r_.Error(g, P("gracePeriod"), "only for action pod-kill");
    } else if (!g.IsScalar() || !YAML::convert<int64_t>::decode(g, secs) || secs < 0) {
      r_.Error(g, P("gracePeriod"), "expected seconds >= 0");
    } else if (secs > 0) {
      // A graceful delete: SIGTERM, SIGKILL after the grace period.
      p->set_signal(15);
      p->mutable_grace()->set_seconds(secs);
    }
  }
  if (a == "container-kill") {
    YAML::Node c = Get("containerNames");
    // chaos-mesh 1.x named the one container: `containerName: etcd`.
    YAML::Node one = Get("containerName");
    if (one && !c) {
      if (!one.IsScalar() || one.Scalar().empty()) {
        r_.Error(one, P("containerName"), "expected the name of the managed process to kill");
      } else {
        managed = one.Scalar();
      }
    } else if (one) {
      r_.Error(one, P("containerName"), "give containerName (chaos-mesh 1.x) or containerNames");
    } else if (!c || !c.IsSequence() || c.size() != 1 || !c[0].IsScalar()) {
      r_.Error(c ? c.Mark() : spec_.Mark(), P("containerNames"),
               "container-kill needs exactly one container name: the managed process to kill");
    } else {
      managed = c[0].Scalar();
    }
  }
  p->mutable_target()->set_managed(managed);
}

// stress-ng sizes as chaos-mesh writes them: "256MB", "1GB", "512KB", "4096" (bytes), "50%".
void Mapper::MemorySize(v1::StressFault* st, const YAML::Node& v, const std::string& path) {
  const std::string text = v.IsScalar() ? v.Scalar() : "";
  size_t end = 0;
  double num = 0;
  try {
    num = std::stod(text, &end);
  } catch (const std::exception&) {
    end = 0;
  }
  std::string unit = Upper(text.substr(end));
  if (end == 0 || num <= 0) {
    r_.Error(v, path, "expected a size like 256MB, 1GB or 50%");
    return;
  }
  if (unit == "%") {
    if (num > 100) {
      r_.Error(v, path, "a percent of memory must be within 0..100");
      return;
    }
    SetFieldText(st, "size_percent", text.substr(0, end), v.Mark(), path, r_);
    return;
  }
  static const std::map<std::string, double> kUnits = {
      {"", 1},         {"B", 1},         {"KB", 1024},    {"K", 1024},
      {"MB", 1 << 20}, {"M", 1 << 20},   {"GB", 1 << 30}, {"G", 1 << 30},
      {"KIB", 1024},   {"MIB", 1 << 20}, {"GIB", 1 << 30}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) {
    r_.Error(v, path, "unknown size unit '" + text.substr(end) + "'; use B, KB, MB, GB or %");
    return;
  }
  SetFieldText(st, "size_bytes", std::to_string(static_cast<uint64_t>(num * it->second)), v.Mark(),
               path, r_);
}

void Mapper::Stress(v1::Step* step) {
  Common(step);
  YAML::Node s = Get("stressors");
  if (!s) {
    r_.Error(spec_.Mark(), P("stressors"), "required: cpu and/or memory");
    return;
  }
  std::vector<v1::FaultSpec> faults;
  Block(s, P("stressors"),
        {{"cpu",
          [&](const YAML::Node& v, const std::string& p) {
            v1::FaultSpec f;
            auto* st = f.mutable_stress();
            st->set_action(v1::StressFault::CPU);
            Block(v, p,
                  {{"workers",
                    [&](const YAML::Node& x, const std::string& q) {
                      SetField(st, "workers", x, x.Mark(), q, r_);
                    }},
                   {"load", [&](const YAML::Node& x, const std::string& q) {
                      SetField(st, "load", x, x.Mark(), q, r_);
                    }}});
            if (v.IsMap() && !v["workers"]) r_.Error(v, p + ".workers", "required");
            faults.push_back(std::move(f));
          }},
         {"memory", [&](const YAML::Node& v, const std::string& p) {
            v1::FaultSpec f;
            auto* st = f.mutable_stress();
            st->set_action(v1::StressFault::MEMORY);
            Block(
                v, p,
                {{"workers",
                  [&](const YAML::Node& x, const std::string& q) {
                    SetField(st, "workers", x, x.Mark(), q, r_);
                  }},
                 {"size", [&](const YAML::Node& x, const std::string& q) { MemorySize(st, x, q); }},
                 {"oomScoreAdj", [&](const YAML::Node& x, const std::string& q) {
                    SetField(st, "oom_score_adj", x, x.Mark(), q, r_);
                  }}});
            if (v.IsMap() && !v["size"]) r_.Error(v, p + ".size", "required (e.g. 256MB or 50%)");
            faults.push_back(std::move(f));
          }}});
  if (faults.size() == 1) {
    *step->mutable_fault() = std::move(faults[0]);
  } else if (faults.size() == 2) {
    // Both stressors at once, as chaos-mesh runs them: a parallel group of two fault steps.
    v1::Step group;
    group.set_name(step->name());
    for (auto& f : faults) {
      v1::Step* sub = group.add_parallel();
      *sub->mutable_fault() = std::move(f);
      *sub->mutable_target() = step->target();
      *sub->mutable_duration() = step->duration();
      sub->set_name(step->name() + "-" +
                    (sub->fault().stress().action() == v1::StressFault::CPU ? "cpu" : "memory"));
    }
    *step = std::move(group);
  } else if (s.IsMap()) {
    r_.Error(s, P("stressors"), "required: cpu and/or memory");
  }
}

// TimeChaos: the clocks of the managed etcd (or of the one process containerNames names) move by
// timeOffset. chaos-mesh moves exactly the clockIds listed; faultline moves a clock with its
// coarse/raw/alarm variants, so each id maps to its group (CLOCK_MONOTONIC_RAW -> monotonic).
void Mapper::Time(v1::Step* step) {
  Common(step);
  v1::TimeFault* t = step->mutable_fault()->mutable_time();
  t->set_action(v1::TimeFault::OFFSET);
  std::string managed = kManagedEtcd;
  if (YAML::Node c = Get("containerNames")) {
    if (!c.IsSequence() || c.size() != 1 || !c[0].IsScalar() || c[0].Scalar().empty()) {
      r_.Error(c, P("containerNames"), "one container name: the managed process whose clock moves");
    } else {
      managed = c[0].Scalar();
    }
  }
  t->mutable_target()->set_managed(managed);
  const std::string f = "spec.steps[0].fault.time";
  if (YAML::Node off = Get("timeOffset")) {
    Remember(P("timeOffset"), off);
    SetField(t, "offset", off, off.Mark(), P("timeOffset"), r_);
    r_.Alias(f + ".offset", P("timeOffset"));
  } else {
    r_.Error(spec_.Mark(), P("timeOffset"), "required: how far the clock moves, e.g. -60s");
  }
  if (YAML::Node ids = Get("clockIds")) {
    Remember(P("clockIds"), ids);
    r_.Alias(f + ".clocks", P("clockIds"));
    if (!ids.IsSequence()) {
      r_.Error(ids, P("clockIds"), "expected a list such as [CLOCK_REALTIME]");
      return;
    }
    static const std::map<std::string, v1::TimeFault::Clock> kGroups = {
        {"REALTIME", v1::TimeFault::REALTIME},       {"REALTIME_COARSE", v1::TimeFault::REALTIME},
        {"REALTIME_ALARM", v1::TimeFault::REALTIME}, {"TAI", v1::TimeFault::REALTIME},
        {"MONOTONIC", v1::TimeFault::MONOTONIC},     {"MONOTONIC_COARSE", v1::TimeFault::MONOTONIC},
        {"MONOTONIC_RAW", v1::TimeFault::MONOTONIC}, {"BOOTTIME", v1::TimeFault::BOOTTIME},
        {"BOOTTIME_ALARM", v1::TimeFault::BOOTTIME}};
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string p = P("clockIds") + "[" + std::to_string(i) + "]";
      std::string id = ids[i].IsScalar() ? Upper(ids[i].Scalar()) : "";
      if (id.rfind("CLOCK_", 0) == 0) id = id.substr(6);
      auto it = kGroups.find(id);
      if (it == kGroups.end()) {
        r_.Error(ids[i], p,
                 id.find("CPUTIME") != std::string::npos
                     ? "CPU-time clocks are not moved by faultline"
                     : "unknown clock; expected CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME "
                       "(or their _COARSE/_RAW/_ALARM variants, CLOCK_TAI)");
        continue;
      }
      if (std::find(t->clocks().begin(), t->clocks().end(), it->second) == t->clocks().end()) {
        t->add_clocks(it->second);
      }
    }
  }
}

void Mapper::Map(const std::string& kind) {
  kind_ = kind;
  v1::Step* step = e_->add_steps();
  step->set_name(e_->name());
  if (kind == "IOChaos") {
    Io(step);
  } else if (kind == "NetworkChaos") {
    Net(step);
  } else if (kind == "PodChaos") {
    Pod(step);
  } else if (kind == "StressChaos") {
    Stress(step);
  } else if (kind == "TimeChaos") {
    Time(step);
  }
  ReportUnhandled(kind);
}

// What a chaos-mesh manifest does not say but a faultline run needs: a light workload and the
// checks that prove etcd stayed consistent.
void Defaults(v1::Experiment* e) {
  auto* w = e->mutable_workload();
  w->set_kind(v1::Workload::KV);
  w->set_clients(4);
  w->set_rate(200);
  w->set_keys(100);
  w->set_value_size(256);
  w->set_read_percent(50);
  for (auto c : {v1::HEALTH, v1::CONVERGENCE, v1::HASHKV, v1::KEY_DIFF, v1::REVISIONS, v1::ALARMS,
                 v1::LOST_WRITES}) {
    e->add_checks(c);
  }
}

const std::map<std::string, std::string>& ScheduleTypes() {
  static const std::map<std::string, std::string> m = {{"IOChaos", "ioChaos"},
                                                       {"NetworkChaos", "networkChaos"},
                                                       {"PodChaos", "podChaos"},
                                                       {"StressChaos", "stressChaos"},
                                                       {"TimeChaos", "timeChaos"}};
  return m;
}

void ReadSchedule(const YAML::Node& spec, Reporter& r, v1::Experiment* e) {
  auto* s = e->mutable_schedule();
  YAML::Node type = spec["type"];
  std::string kind;
  std::string embedded_key;
  if (!type || !type.IsScalar()) {
    r.Error(type ? type.Mark() : spec.Mark(), "spec.type",
            "required: IOChaos, NetworkChaos, PodChaos, StressChaos or TimeChaos");
  } else {
    auto it = ScheduleTypes().find(type.Scalar());
    if (it == ScheduleTypes().end()) {
      r.Error(type, "spec.type",
              "unsupported type '" + type.Scalar() +
                  "'; expected IOChaos, NetworkChaos, PodChaos, StressChaos or TimeChaos");
    } else {
      kind = it->first;
      embedded_key = it->second;
    }
  }
  for (const auto& kv : spec) {
    const std::string key = kv.first.Scalar();
    const std::string p = "spec." + key;
    r.Remember(p, kv.first.Mark());
    const YAML::Node& v = kv.second;
    if (key == "type") continue;
    if (key == "schedule") {
      SetField(s, "cron", v, v.Mark(), p, r);
      r.Alias("spec.schedule.cron", p);
    } else if (key == "concurrencyPolicy") {
      SetField(s, "concurrency_policy", v, v.Mark(), p, r);
    } else if (key == "startingDeadlineSeconds") {
      SetField(s, "starting_deadline_seconds", v, v.Mark(), p, r);
      r.Alias("spec.schedule.startingDeadlineSeconds", p);
    } else if (key == "historyLimit") {
      SetField(s, "history_limit", v, v.Mark(), p, r);
    } else if (key == embedded_key) {
      if (!v.IsMap()) {
        r.Error(v, p, "expected a mapping, got " + NodeKind(v));
        continue;
      }
      if (v["scheduler"]) {
        r.Error(v["scheduler"], p + ".scheduler", "a Schedule's spec.schedule is the schedule");
        continue;
      }
      Mapper(v, p, r, e).Map(kind);
    } else if (ScheduleTypes().count(kind) && !embedded_key.empty()) {
      r.Error(kv.first, p, "unsupported field for a Schedule of type " + kind);
    } else {
      r.Error(kv.first, p, "unsupported field for a Schedule");
    }
  }
  if (!spec["schedule"]) r.Error(spec.Mark(), "spec.schedule", "required: a cron expression");
  if (!embedded_key.empty() && !spec[embedded_key]) {
    r.Error(spec.Mark(), "spec." + embedded_key, "required for type " + kind);
  }
}

}  // namespace

std::string CanonicalChaosMeshKind(const std::string& kind) {
  // chaos-mesh 1.x registered IOChaos as "IoChaos"; NetworkChaos, PodChaos and StressChaos kept
  // their names, and 1.x had no Schedule kind (each object carried `scheduler`).
  return kind == "IoChaos" ? "IOChaos" : kind;
}

bool IsChaosMeshKind(const std::string& kind) {
  return kind == "Schedule" || ScheduleTypes().count(kind) > 0;
}

void ReadChaosMesh(const YAML::Node& doc, const std::string& kind, Reporter& r, v1::Experiment* e) {
  bool paused = false;
  // `status` comes with `kubectl get -o yaml` output; it is the cluster's, not the manifest's.
  YAML::Node spec =
      ReadEnvelope(doc, r,
                   [&](const std::string& field, const std::string& path, const YAML::Node& key,
                       const YAML::Node& value) {
                     if (field == "name") {
                       if (value.IsScalar()) e->set_name(value.Scalar());
                     } else if (field == "annotations") {
                       // chaos-mesh pauses an object with this annotation; here that suspends its
                       // schedule.
                       YAML::Node pause = value["experiment.chaos-mesh.org/pause"];
                       paused = pause && pause.IsScalar() && Lower(pause.Scalar()) == "true";
                     } else if (field != "namespace" && field != "labels") {
                       // namespace and labels describe the chaos object itself and change nothing
                       // here.
                       r.Error(key, path,
                               "unsupported metadata field; supported: name, namespace, labels, "
                               "annotations");
                     }
                   },
                   *e, {"status"});
  if (!spec || !spec.IsMap()) {
    r.Error(spec ? spec.Mark() : doc.Mark(), "spec", "required: a mapping");
    return;
  }
  if (kind == "Schedule") {
    ReadSchedule(spec, r, e);
  } else {
    Mapper(spec, "spec", r, e).Map(kind);
  }
  if (paused && e->has_schedule()) e->mutable_schedule()->set_suspend(true);
  Defaults(e);
}

}  // namespace faultline::experiments::internal
