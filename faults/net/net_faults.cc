#include "faults/net/net_faults.h"

#include <net/if.h>
#include <sys/random.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "faults/core/duration.h"
#include "faults/net/ifb_pool.h"
#include "faults/net/nfqueue.h"
#include "faults/net/nft.h"
#include "faults/net/probe.h"
#include "faults/net/tc.h"
#include "faults/sys/realtime.h"

namespace faultline::faults::net {
namespace {

using json = nlohmann::json;
using v1::NetFault;

std::string NewId() {
  uint32_t r = 0;
  if (getrandom(&r, sizeof r, 0) != sizeof r) ThrowErrno("getrandom");
  char buf[9];
  snprintf(buf, sizeof buf, "%08x", r);
  return buf;
}

Backend ParseBackend(const std::string& s) {
  if (s == "netem") return Backend::kNetem;
  if (s == "nfqueue") return Backend::kNfqueue;
  return Backend::kNftables;
}

// A device the tc path hooks, and what it put there.
struct Hook {
  std::string dev;
  bool clsact_created = false;
};

class NetFaultImpl : public Fault {
 public:
  NetFaultImpl(v1::FaultSpec spec, NetSpec s, const NetOptions& opts, std::string id, IfbPool* pool)
      : spec_(std::move(spec)),
        s_(std::move(s)),
        opts_(opts),
        id_(std::move(id)),
        pool_(pool),
        // A pooled IFB is named when Apply takes it from the pool.
        ifb_(pool ? "" : kIfbPrefix + id_) {}

  std::string Kind() const override { return "net/" + ActionName(s_.action); }
  std::string table() const { return kNftPrefix + id_; }

  void Prepare() override {
    Rtnl nl;
    if (s_.backend != Backend::kNetem) {
      // nftables matches the name, so a missing device would silently match nothing.
      if (!s_.match.device.empty() && nl.IfIndex(s_.match.device) == 0)
        throw FaultError("device " + s_.match.device + " does not exist");
      return;
    }
    hooks_.clear();
    if (!s_.match.device.empty()) {
      if (nl.IfIndex(s_.match.device) == 0)
        throw FaultError("device " + s_.match.device + " does not exist");
      hooks_.push_back({s_.match.device});
    } else {
      std::set<int> ifbs;
      for (auto& [index, name] : nl.Links("ifb")) ifbs.insert(index);
      for (auto& [index, name] : nl.Links())
        if (name != "lo" && !ifbs.contains(index)) hooks_.push_back({name});
      if (hooks_.empty()) throw FaultError("no network device to act on");
    }
    // Two free consecutive priorities on every hooked device: exemptions, then redirects.
    std::vector<uint16_t> used;
    for (const Hook& h : hooks_)
      for (bool ingress : {false, true})
        for (uint16_t p : FilterPrios(nl, nl.IfIndex(h.dev), ingress)) used.push_back(p);
    prio_ = 0;
    for (uint32_t p = kFirstPrio; p + 1 <= kLastPrio; p += 2) {
      if (std::find(used.begin(), used.end(), p) == used.end() &&
          std::find(used.begin(), used.end(), p + 1) == used.end()) {
        prio_ = static_cast<uint16_t>(p);
        break;
      }
    }
    if (prio_ == 0) throw FaultError("every faultline filter priority is in use");
  }

  std::string State() const override {
    json j{{"id", id_}, {"backend", BackendName(s_.backend)}, {"prio", prio_}};
    if (!ifb_.empty()) j["ifb"] = ifb_;
    json hooks = json::array();
    for (const Hook& h : hooks_) hooks.push_back({{"dev", h.dev}, {"clsact", h.clsact_created}});
    j["hooks"] = hooks;
    return j.dump();
  }

  void Apply() override {
    std::lock_guard lock(mu_);
    if (applied_) return;
    try {
      switch (s_.backend) {
        case Backend::kNftables:
          ApplyNft();
          break;
        case Backend::kNfqueue:
          ApplyQueue();
          break;
        case Backend::kNetem:
          ApplyTc();
          break;
      }
    } catch (...) {
      applied_ = true;
      RevertLocked();  // nothing half-applied
      throw;
    }
    applied_ = true;
  }

  void Revert() override {
    std::lock_guard lock(mu_);
    RevertLocked();
  }

  std::string Describe() const override {
    std::string d = ActionName(s_.action);
    switch (s_.action) {
      case NetFault::DELAY:
        d += " " + FormatDuration(s_.delay);
        if (s_.jitter.count()) d += " ±" + FormatDuration(s_.jitter);
        break;
      case NetFault::BANDWIDTH:
        d += " " + std::to_string(s_.rate * 8) + " bit/s";
        break;
      case NetFault::PARTITION:
        break;
      case NetFault::REORDER:
        d += " " + Pct(s_.percent) + " at once, rest after " + FormatDuration(s_.delay);
        break;
      default:
        d += " " + Pct(s_.percent);
        break;
    }
    d += s_.match.egress && s_.match.ingress ? " both ways"
         : s_.match.egress                   ? " egress"
                                             : " ingress";
    for (const Cidr& c : s_.match.to) d += " to " + c.ToString();
    for (const Cidr& c : s_.match.from) d += " from " + c.ToString();
    for (PortRange p : s_.match.ports)
      d += " port " + std::to_string(p.first) +
           (p.last != p.first ? "-" + std::to_string(p.last) : "");
    if (!s_.match.device.empty()) d += " on " + s_.match.device;
    d += std::string(" via ") + BackendName(s_.backend);
    if (queue_) {
      d += " (queue " + std::to_string(queue_->queue_num()) + ")";
      // A held packet's delay is only as good as its release: say how good it was.
      if (s_.action == NetFault::DELAY || s_.action == NetFault::REORDER) {
        d += "; " + queue_->lateness().Describe();
      }
      d += "; release thread " + queue_->scheduling().detail;
    }
    if (s_.backend == Backend::kNetem) d += " (" + (ifb_.empty() ? "pooled IFB" : ifb_) + ")";
    return d;
  }

  Counters Observe() const override {
    std::lock_guard lock(mu_);
    // After the revert the table, IFB and queue are gone: what they counted last stays.
    if (!applied_ && final_counters_) return *final_counters_;
    return ObserveLocked();
  }

  void RestoreState(const json& j) {
    prio_ = j.value("prio", 0);
    // Journals written before the pool named the IFB after the fault id alone.
    ifb_ = j.value("ifb", kIfbPrefix + id_);
    for (const auto& h : j.value("hooks", json::array()))
      hooks_.push_back({h.value("dev", ""), h.value("clsact", false)});
    applied_ = true;  // whatever the journal says may exist must be looked for on revert
  }

 private:
  Counters ObserveLocked() const {
    Counters c;
    if (s_.backend != Backend::kNetem) NftCounters(c);
    if (s_.backend == Backend::kNetem) {
      try {
        Rtnl nl;
        QdiscCounters(nl, c);
      } catch (const std::exception&) {
      }
    }
    if (queue_) QueueCounters(c);
    return c;
  }
  // Each reads what one kernel object counted; the revert calls them just before that object
  // goes. A failed read leaves its counters out.
  void NftCounters(Counters& c) const {
    try {
      c["matched_packets"] = NftMatchedPackets(table());
    } catch (const std::exception&) {
    }
  }
  void QdiscCounters(Rtnl& nl, Counters& c) const {
    try {
      if (int index = ifb_.empty() ? 0 : nl.IfIndex(ifb_); index > 0) {
        QdiscStats st = RootQdiscStats(nl, index);
        c["qdisc_packets"] = st.packets;
        c["qdisc_drops"] = st.drops;
        c["qdisc_backlog"] = st.backlog;
      }
    } catch (const std::exception&) {
    }
  }
  void QueueCounters(Counters& c) const {
    auto st = queue_->stats();
    c["queued"] = st.received;
    c["released"] = st.accepted;
    c["dropped"] = st.dropped;
    c["held"] = st.held_now;
    c["held_max"] = st.held_max;
    c["verdict_messages"] = st.verdict_msgs;
    c["batch_verdicts"] = st.batch_verdicts;
    c["overruns"] = st.overruns;
    queue_->lateness().AddCounters(c);
    c["release_realtime"] = queue_->scheduling().realtime ? 1 : 0;
  }

  static std::string Pct(double p) {
    char buf[32];
    snprintf(buf, sizeof buf, "%g%%", p);
    return buf;
  }

  NftPlan Plan() const {
    NftPlan p;
    p.match = s_.match;
    p.exempt_ports = opts_.exempt_ports;
    p.exempt_cidrs = opts_.exempt_cidrs;
    p.percent = s_.action == NetFault::LOSS ? s_.percent : 100;
    return p;
  }

  void ApplyNft() { NftCreateTable(table(), Plan()); }

  void ApplyQueue() {
    QueueBehaviour b;
    b.delay = s_.delay;
    b.jitter = s_.jitter;
    b.normal_jitter = s_.distribution == NetFault::NORMAL;
    b.correlation = s_.correlation;
    if (s_.action == NetFault::LOSS) {
      b.delay = b.jitter = {};
      b.loss_percent = s_.percent;
    }
    if (s_.action == NetFault::REORDER) {
      b.jitter = {};
      b.reorder_percent = s_.percent;
      b.gap = s_.gap;
    }
    // The spec seed alone, so a replayed experiment drops and jitters the same packets.
    b.seed = spec_.seed();
    queue_ = std::make_unique<PacketQueue>(opts_.first_queue, opts_.last_queue, b);
    queue_->Start();
    NftPlan p = Plan();
    p.verdict = NftPlan::Verdict::kQueue;
    p.queue = queue_->queue_num();
    NftCreateTable(table(), p);
  }

  void ApplyTc() {
    Rtnl nl;
    int ifb_index = 0;
    if (pool_) {
      // Down and clean: the root qdisc goes on before the device comes up.
      PooledIfb d = pool_->Acquire(nl);
      ifb_ = d.name;
      ifb_index = d.index;
    } else {
      ifb_index = CreateIfb(nl, ifb_);
    }
    if (s_.action == NetFault::BANDWIDTH) {
      SetRootTbf(nl, ifb_index, s_);
    } else {
      SetRootNetem(nl, ifb_index, s_);
    }
    if (pool_) SetLinkUp(nl, ifb_index, true);
    const auto exempt = BuildExemptFilters(opts_.exempt_ports, opts_.exempt_cidrs);
    for (Hook& h : hooks_) {
      const int index = nl.IfIndex(h.dev);
      if (index == 0) throw FaultError("device " + h.dev + " vanished");
      h.clsact_created = AddClsact(nl, index);
      for (bool ingress : {false, true}) {
        if (ingress ? !s_.match.ingress : !s_.match.egress) continue;
        for (const auto& keys : exempt) AddU32Filter(nl, index, ingress, prio_, keys, 0);
        for (const auto& keys : BuildU32Filters(s_.match, !ingress))
          AddU32Filter(nl, index, ingress, prio_ + 1, keys, ifb_index);
      }
    }
  }

  void RevertLocked() {
    if (!applied_) return;
    std::string errors;
    auto attempt = [&](auto fn) {
      try {
        fn();
      } catch (const std::exception& e) {
        errors += std::string(errors.empty() ? "" : "; ") + e.what();
      }
    };
    Counters& last = final_counters_.emplace();
    // Steering goes first so no packet is sent to a queue or IFB that is about to vanish.
    if (s_.backend != Backend::kNetem) {
      NftCounters(last);
      attempt([&] { NftDeleteTable(table()); });
    }
    if (queue_) {
      queue_->Stop();
      QueueCounters(last);  // with the packets the stop released
      queue_.reset();
    }
    if (s_.backend == Backend::kNetem) {
      attempt([&] {
        Rtnl nl;
        QdiscCounters(nl, last);
        for (const Hook& h : hooks_) {
          const int index = nl.IfIndex(h.dev);
          if (index == 0) continue;
          for (bool ingress : {false, true}) {
            DeleteFilters(nl, index, ingress, prio_);
            DeleteFilters(nl, index, ingress, static_cast<uint16_t>(prio_ + 1));
          }
          if (h.clsact_created && FilterPrios(nl, index, false).empty() &&
              FilterPrios(nl, index, true).empty())
            DeleteClsact(nl, index);
        }
        if (ifb_.empty()) return;  // pooled, and Apply never took one
        // A pooled IFB is the pool's again once released (another fault may take it at once):
        // this fault forgets its name first so no later revert touches it.
        const std::string name = pool_ ? std::exchange(ifb_, "") : ifb_;
        if (!(pool_ && pool_->Release(nl, name))) nl.DeleteLink(name);
      });
    }
    if (!errors.empty()) throw FaultError("revert " + Describe() + ": " + errors);
    applied_ = false;
  }

  v1::FaultSpec spec_;
  NetSpec s_;
  NetOptions opts_;
  std::string id_;
  IfbPool* pool_;  // null: each fault creates and deletes its own IFB
  std::string ifb_;
  std::vector<Hook> hooks_;
  uint16_t prio_ = 0;
  mutable std::mutex mu_;
  bool applied_ = false;
  std::unique_ptr<PacketQueue> queue_;
  std::optional<Counters> final_counters_;
};

class NetFaultFactory : public FaultFactory {
 public:
  NetFaultFactory(NetOptions opts, IfbPool* pool) : opts_(std::move(opts)), pool_(pool) {}

  std::string_view Family() const override { return "net"; }

  FieldErrors Validate(const v1::FaultSpec& spec) const override {
    return ValidateNet(spec.net(), opts_, Caps());
  }

  std::unique_ptr<Fault> Create(const v1::FaultSpec& spec, const FaultContext&) const override {
    NetSpec s = ResolveNet(spec.net(), opts_, Caps());
    return std::make_unique<NetFaultImpl>(spec, std::move(s), opts_, NewId(), pool_);
  }

  std::unique_ptr<Fault> Restore(const v1::FaultSpec& spec, std::string_view state,
                                 const FaultContext&) const override {
    json j = json::parse(state, nullptr, false);
    if (j.is_discarded() || !j.contains("id"))
      throw FaultError("net: journal state is not valid: " + std::string(state));
    // Rebuilt from the journal alone: the backend recorded there, not today's probe, decides
    // what to remove.
    NetSpec s;
    s.action = spec.net().action();
    s.backend = ParseBackend(j.value("backend", ""));
    auto f = std::make_unique<NetFaultImpl>(spec, std::move(s), opts_, j["id"].get<std::string>(),
                                            pool_);
    f->RestoreState(j);
    return f;
  }

  std::vector<std::string> Sweep(const FaultContext&) const override {
    std::vector<std::string> done;
    for (bool legacy_ip : {false, true}) {
      for (const std::string& t : NftListTables(legacy_ip)) {
        if (!t.starts_with(kNftPrefix)) continue;
        NftDeleteTable(t, legacy_ip);
        done.push_back(std::string("deleted nftables table ") + (legacy_ip ? "ip " : "inet ") + t);
      }
    }
    Rtnl nl;
    const auto links = nl.Links();
    // Only devices of kind ifb can be faultline's IFBs: a lab's bridge and veths are named
    // "fl" + a hex tag, which starts "flb" for one lab name in sixteen.
    const auto ifbs = nl.Links("ifb");
    std::set<int> ifb_indexes;
    for (auto& [index, name] : ifbs) ifb_indexes.insert(index);
    // Filters first: a redirect to a vanished IFB would drop the packets it matches.
    for (auto& [index, name] : links) {
      if (ifb_indexes.contains(index)) continue;
      bool ours = false;
      for (bool ingress : {false, true})
        for (uint16_t p : FilterPrios(nl, index, ingress))
          if (p >= kFirstPrio && p <= kLastPrio) {
            DeleteFilters(nl, index, ingress, p);
            ours = true;
            done.push_back("deleted " + std::string(ingress ? "ingress" : "egress") +
                           " filters prio " + std::to_string(p) + " on " + name);
          }
      // A clsact that held only our filters was almost surely ours; one with other filters
      // (someone's BPF or tc rules) stays.
      if (ours && FilterPrios(nl, index, false).empty() && FilterPrios(nl, index, true).empty()) {
        DeleteClsact(nl, index);
        done.push_back("deleted empty clsact on " + name);
      }
    }
    for (auto& [index, name] : ifbs) {
      if (!name.starts_with(kIfbPrefix)) continue;
      // A pool device of a live agent (this one's included) is that agent's to reset or delete;
      // one whose agent died is a leftover like any other.
      if (name.starts_with(kIfbPoolPrefix) && OwnerAlive(LinkAlias(nl, name))) continue;
      nl.DeleteLink(name);
      done.push_back("deleted IFB " + name);
    }
    return done;
  }

  std::map<std::string, std::pair<bool, std::string>> Probe() const override {
    auto caps = Caps();
    auto rt = sys::ProbeRealtime();
    caps["realtime_release"] = {rt.realtime, "held packets (nfqueue): release thread " + rt.detail};
    return caps;
  }

 private:
  const Capabilities& Caps() const {
    std::call_once(once_,
                   [&] { caps_ = opts_.capabilities ? *opts_.capabilities : ProbeKernel(); });
    return caps_;
  }

  NetOptions opts_;
  IfbPool* pool_;
  mutable std::once_flag once_;
  mutable Capabilities caps_;
};

}  // namespace

std::unique_ptr<FaultFactory> MakeNetFaultFactory(NetOptions options, IfbPool* pool) {
  return std::make_unique<NetFaultFactory>(std::move(options), pool);
}

void RegisterNetFaults(Registry& registry, NetOptions options, IfbPool* pool) {
  registry.Add(MakeNetFaultFactory(std::move(options), pool));
}

}  // namespace faultline::faults::net
