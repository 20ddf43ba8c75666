#include "controller/runner/targets.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>

#include <algorithm>
#include <optional>
#include <set>
#include <stdexcept>

namespace faultline::controller {

using v1::TargetSelector;

std::vector<std::string> RoleMembers(TargetSelector::Role role, const ClusterView& cluster,
                                     faults::Rng& rng) {
  const size_t n = cluster.members.size();
  std::vector<std::string> followers;
  for (const auto& m : cluster.members) {
    if (m != cluster.leader) followers.push_back(m);
  }
  auto need_leader = [&] {
    if (cluster.leader.empty()) {
      throw std::invalid_argument("target.role: the cluster has no leader right now");
    }
  };
  switch (role) {
    case TargetSelector::LEADER:
      need_leader();
      return {cluster.leader};
    case TargetSelector::FOLLOWERS:
      need_leader();
      return followers;
    case TargetSelector::MINORITY: {
      // Losing these still leaves a quorum; picked among all members, leader included, so the
      // seed decides whether a minority fault also costs the leader.
      size_t k = n == 0 ? 0 : (n - 1) / 2;
      std::vector<std::string> out;
      for (size_t i : rng.Sample(n, k)) out.push_back(cluster.members[i]);
      return out;
    }
    case TargetSelector::MAJORITY: {
      need_leader();
      size_t k = n / 2 + 1;
      std::vector<std::string> out = {cluster.leader};
      for (size_t i : rng.Sample(followers.size(), std::min(k - 1, followers.size()))) {
        out.push_back(followers[i]);
      }
      return out;
    }
    default:
      return cluster.members;
  }
}

std::vector<size_t> ResolveTargets(const TargetSelector& sel, const std::vector<AgentInfo>& agents,
                                   const ClusterView& cluster, faults::Rng& rng,
                                   const std::string& member_label) {
  std::optional<std::set<std::string>> allowed;  // member names, when narrowed
  if (sel.role() != TargetSelector::ROLE_UNSPECIFIED) {
    auto r = RoleMembers(sel.role(), cluster, rng);
    allowed.emplace(r.begin(), r.end());
  }
  if (sel.members_size() > 0) {
    std::set<std::string> named;
    for (const auto& m : sel.members()) {
      if (!cluster.members.empty() &&
          std::find(cluster.members.begin(), cluster.members.end(), m) == cluster.members.end()) {
        throw std::invalid_argument("target.members: \"" + m + "\" is not a member of the cluster");
      }
      if (!allowed || allowed->count(m)) named.insert(m);
    }
    allowed = std::move(named);
  }
  std::vector<size_t> candidates;
  for (size_t i = 0; i < agents.size(); ++i) {
    const auto& labels = agents[i].labels;
    bool ok = true;
    for (const auto& [k, v] : sel.match_labels()) {
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) {
        ok = false;
        break;
      }
    }
    if (ok && allowed) {
      auto it = labels.find(member_label);
      ok = it != labels.end() && allowed->count(it->second);
    }
    if (ok) candidates.push_back(i);
  }
  if (allowed && !allowed->empty()) {
    // Every member the role names must have an agent, or the fault would silently miss it.
    for (const auto& m : *allowed) {
      bool found = std::any_of(candidates.begin(), candidates.end(), [&](size_t i) {
        auto it = agents[i].labels.find(member_label);
        return it != agents[i].labels.end() && it->second == m;
      });
      if (!found) {
        throw std::invalid_argument("target: no agent with label " + member_label + "=" + m +
                                    " (and the selector's labels) for member " + m);
      }
    }
  }
  const size_t n = candidates.size();
  size_t k = n;
  switch (sel.mode()) {
    case TargetSelector::ONE:
      if (n == 0) throw std::invalid_argument("target: no agent matches (" + Describe(sel) + ")");
      k = 1;
      break;
    case TargetSelector::FIXED:
      if (sel.value() > n) {
        throw std::invalid_argument("target.value: " + std::to_string(sel.value()) +
                                    " targets asked but only " + std::to_string(n) +
                                    " agents match");
      }
      k = sel.value();
      break;
    case TargetSelector::FIXED_PERCENT:
      if (sel.value() > 100) throw std::invalid_argument("target.value: percent must be 0..100");
      k = n * sel.value() / 100;
      break;
    case TargetSelector::RANDOM_MAX_PERCENT: {
      if (sel.value() > 100) throw std::invalid_argument("target.value: percent must be 0..100");
      uint64_t pct = rng.Below(uint64_t(sel.value()) + 1);
      k = size_t(n * pct / 100);
      break;
    }
    default:
      if (n == 0) throw std::invalid_argument("target: no agent matches (" + Describe(sel) + ")");
      break;
  }
  if (k == n) return candidates;
  std::vector<size_t> out;
  for (size_t i : rng.Sample(n, k)) out.push_back(candidates[i]);
  return out;
}

namespace {

std::string Substitute(const std::string& s, const Labels& labels) {
  static const std::string kOpen = "${label:";
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t at = s.find(kOpen, pos);
    if (at == std::string::npos) break;
    size_t end = s.find('}', at);
    if (end == std::string::npos) break;
    std::string key = s.substr(at + kOpen.size(), end - at - kOpen.size());
    auto it = labels.find(key);
    if (it == labels.end()) {
      throw std::invalid_argument("fault: ${label:" + key + "} but the agent has no label " + key);
    }
    out += s.substr(pos, at - pos) + it->second;
    pos = end + 1;
  }
  return out + s.substr(pos);
}

}  // namespace

void SubstituteLabels(google::protobuf::Message* msg, const Labels& labels) {
  using google::protobuf::FieldDescriptor;
  const auto* refl = msg->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  refl->ListFields(*msg, &fields);
  for (const auto* f : fields) {
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      if (f->is_repeated()) {
        for (int i = 0; i < refl->FieldSize(*msg, f); ++i) {
          refl->SetRepeatedString(msg, f, i,
                                  Substitute(refl->GetRepeatedString(*msg, f, i), labels));
        }
      } else {
        refl->SetString(msg, f, Substitute(refl->GetString(*msg, f), labels));
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < refl->FieldSize(*msg, f); ++i) {
          SubstituteLabels(refl->MutableRepeatedMessage(msg, f, i), labels);
        }
      } else {
        SubstituteLabels(refl->MutableMessage(msg, f), labels);
      }
    }
  }
}

std::string Describe(const TargetSelector& sel) {
  if (!sel.same_as().empty()) return "same as step " + sel.same_as();
  std::string out;
  for (const auto& [k, v] : sel.match_labels()) {
    if (!out.empty()) out += ",";
    out += k + "=" + v;
  }
  if (sel.role() != TargetSelector::ROLE_UNSPECIFIED) {
    out += std::string(out.empty() ? "" : " ") + "role=" + TargetSelector::Role_Name(sel.role());
  }
  for (const auto& m : sel.members()) out += " member=" + m;
  out += std::string(out.empty() ? "" : " ") + "mode=" +
         TargetSelector::Mode_Name(
             sel.mode() == TargetSelector::MODE_UNSPECIFIED ? TargetSelector::ALL : sel.mode());
  if (sel.mode() >= TargetSelector::FIXED) out += " value=" + std::to_string(sel.value());
  return out;
}

}  // namespace faultline::controller
