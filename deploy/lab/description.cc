#include "deploy/lab/description.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace faultline::lab {
namespace {

using json = nlohmann::json;

template <typename T>
T Get(const json& j, const char* key, const std::string& path, bool required = true) {
  if (!j.contains(key)) {
    if (required) throw std::invalid_argument("lab description: " + path + key + ": missing");
    return T{};
  }
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw std::invalid_argument("lab description: " + path + key + ": wrong type");
  }
}

}  // namespace

std::string LabInfo::Endpoints() const {
  std::string out;
  for (const auto& m : members) out += (out.empty() ? "" : ",") + m.client_url;
  return out;
}

const MemberInfo* LabInfo::Member(std::string_view n) const {
  for (const auto& m : members) {
    if (m.name == n) return &m;
  }
  return nullptr;
}

std::string ToJson(const LabInfo& info) {
  json members = json::array();
  for (const auto& m : info.members) {
    members.push_back({{"name", m.name},
                       {"netns", m.netns},
                       {"veth", m.veth},
                       {"address", m.address},
                       {"client_url", m.client_url},
                       {"peer_url", m.peer_url},
                       {"dir", m.dir},
                       {"data_dir", m.data_dir},
                       {"agent_socket", m.agent_socket},
                       {"agent_pid", m.agent_pid},
                       {"agent_start_time", m.agent_start_time},
                       {"etcd_pid", m.etcd_pid},
                       {"etcd_start_time", m.etcd_start_time}});
  }
  json j{{"name", info.name},
         {"dir", info.dir},
         {"state", info.state},
         {"subnet", info.subnet},
         {"bridge", info.bridge},
         {"bridge_address", info.bridge_address},
         {"ipv6", info.ipv6},
         {"subnet6", info.subnet6},
         {"bridge_address6", info.bridge_address6},
         {"etcd", info.etcd},
         {"etcd_version", info.etcd_version},
         {"etcd_flags", info.etcd_flags},
         {"etcd_flags_dropped", info.etcd_flags_dropped},
         {"agent", info.agent},
         {"created_unix", info.created_unix},
         {"creator_pid", info.creator_pid},
         {"endpoints", info.Endpoints()},
         {"members", members},
         {"controller",
          {{"binary", info.controller.binary},
           {"socket", info.controller.socket},
           {"state_dir", info.controller.state_dir},
           {"metrics_listen", info.controller.metrics_listen},
           {"pid", info.controller.pid},
           {"start_time", info.controller.start_time}}}};
  return j.dump(2) + "\n";
}

LabInfo LabFromJson(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw std::invalid_argument("lab description: not a JSON object");
  }
  LabInfo info;
  info.name = Get<std::string>(j, "name", "");
  info.dir = Get<std::string>(j, "dir", "");
  info.state = Get<std::string>(j, "state", "");
  info.subnet = Get<std::string>(j, "subnet", "");
  info.bridge = Get<std::string>(j, "bridge", "");
  info.bridge_address = Get<std::string>(j, "bridge_address", "");
  // Labs described before IPv6 are IPv4 labs.
  info.ipv6 = Get<bool>(j, "ipv6", "", false);
  info.subnet6 = Get<std::string>(j, "subnet6", "", false);
  info.bridge_address6 = Get<std::string>(j, "bridge_address6", "", false);
  info.etcd = Get<std::string>(j, "etcd", "");
  // Labs described before versions and flags were recorded have none of these.
  info.etcd_version = Get<std::string>(j, "etcd_version", "", false);
  info.etcd_flags = Get<std::map<std::string, std::string>>(j, "etcd_flags", "", false);
  info.etcd_flags_dropped = Get<std::vector<std::string>>(j, "etcd_flags_dropped", "", false);
  info.agent = Get<std::string>(j, "agent", "", false);
  info.created_unix = Get<int64_t>(j, "created_unix", "", false);
  info.creator_pid = Get<int>(j, "creator_pid", "", false);
  if (!j.contains("members") || !j["members"].is_array()) {
    throw std::invalid_argument("lab description: members: missing or not an array");
  }
  for (size_t i = 0; i < j["members"].size(); ++i) {
    const json& m = j["members"][i];
    std::string p = "members[" + std::to_string(i) + "].";
    if (!m.is_object()) throw std::invalid_argument("lab description: " + p + ": not an object");
    MemberInfo mi;
    mi.name = Get<std::string>(m, "name", p);
    mi.netns = Get<std::string>(m, "netns", p);
    mi.veth = Get<std::string>(m, "veth", p);
    mi.address = Get<std::string>(m, "address", p);
    mi.client_url = Get<std::string>(m, "client_url", p);
    mi.peer_url = Get<std::string>(m, "peer_url", p);
    mi.dir = Get<std::string>(m, "dir", p);
    mi.data_dir = Get<std::string>(m, "data_dir", p);
    mi.agent_socket = Get<std::string>(m, "agent_socket", p, false);
    mi.agent_pid = Get<int>(m, "agent_pid", p, false);
    mi.agent_start_time = Get<uint64_t>(m, "agent_start_time", p, false);
    mi.etcd_pid = Get<int>(m, "etcd_pid", p, false);
    mi.etcd_start_time = Get<uint64_t>(m, "etcd_start_time", p, false);
    info.members.push_back(std::move(mi));
  }
  // Labs described before they had a controller have no such object.
  if (j.contains("controller")) {
    const json& c = j["controller"];
    if (!c.is_object()) throw std::invalid_argument("lab description: controller: not an object");
    const std::string p = "controller.";
    info.controller.binary = Get<std::string>(c, "binary", p);
    info.controller.socket = Get<std::string>(c, "socket", p, false);
    info.controller.state_dir = Get<std::string>(c, "state_dir", p, false);
    info.controller.metrics_listen = Get<std::string>(c, "metrics_listen", p, false);
    info.controller.pid = Get<int>(c, "pid", p, false);
    info.controller.start_time = Get<uint64_t>(c, "start_time", p, false);
  }
  return info;
}

}  // namespace faultline::lab
