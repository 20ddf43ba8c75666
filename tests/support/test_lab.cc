#include "tests/support/test_lab.h"

#include <unistd.h>

#include <atomic>
#include <iostream>
#include <set>

namespace faultline::testing {

namespace {
std::atomic<int> counter{0};
}

TestLab::TestLab(lab::LabOptions tweak) {
  // Short, unique per process and per lab: kernel names are derived from it.
  tweak.name = "t" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  tweak.root = root_.path();
  tweak.no_agents = false;
  tweak.agent = Binary("agent/faultline-agent");
  if (!tweak.no_controller) tweak.controller = Binary("controller/faultline-controller");
  ::setenv("FAULTLINE_LAB_ROOT", root_.path().c_str(), 1);
  try {
    info_ = lab::Up(tweak);
  } catch (...) {
    // Up takes down what it created on failure; this is for what a crash of a child left.
    lab::Down(tweak.name, root_.path());
    throw;
  }
}

TestLab::~TestLab() {
  try {
    lab::Down(info_.name, root_.path());
  } catch (const std::exception& e) {
    std::cerr << "TestLab: lab down " << info_.name << ": " << e.what() << std::endl;
  }
}

std::vector<std::string> TestLab::endpoints() const {
  std::vector<std::string> out;
  for (const auto& m : info_.members) out.push_back(m.client_url);
  return out;
}

std::vector<std::string> TestLab::agents() const {
  std::vector<std::string> out;
  for (const auto& m : info_.members) out.push_back("unix://" + m.agent_socket);
  return out;
}

std::string TestLab::AgentsCsv() const { return JoinCsv(agents()); }

std::string TestLab::EtcdctlLeader() const {
  std::set<uint64_t> leaders;
  std::string name;
  for (const auto& s : lab::QueryEtcd(info_)) {
    if (!s.reachable) continue;
    leaders.insert(s.leader);
    if (s.is_leader()) name = s.member;
  }
  return leaders.size() == 1 ? name : "";
}

int TestLab::IndexOf(const std::string& name) const {
  for (size_t i = 0; i < info_.members.size(); ++i) {
    if (info_.members[i].name == name) return int(i);
  }
  return -1;
}

}  // namespace faultline::testing
