#include "tests/integration/controller/cluster_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace faultline::testing {

namespace {
bool PortsFree(int base, int count) {
  for (int p = base; p < base + count; ++p) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(p));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (!ok) return false;
  }
  return true;
}
}  // namespace

EtcdCluster::EtcdCluster(int members, bool with_agents)
    : dir_("faultline-ctl-" + std::to_string(getpid())) {
  // Ports from the pid so concurrent test runs (other engineers') do not collide, below the
  // ephemeral range (32768+) so an outgoing connection cannot hold one, and probed free first.
  int base = 20000 + (getpid() % 1200) * 10;
  for (int tries = 0; tries < 100 && !PortsFree(base, 10); ++tries) {
    base = 20000 + (base - 20000 + 10) % 12000;
  }
  base_ = base;
  std::string initial;
  for (int i = 0; i < members; ++i) {
    initial += (i ? "," : "") + name(i) + "=http://127.0.0.1:" + std::to_string(base + 5 + i);
  }
  for (int i = 0; i < members; ++i) {
    std::string client = "http://127.0.0.1:" + std::to_string(base + i);
    std::string peer = "http://127.0.0.1:" + std::to_string(base + 5 + i);
    endpoints_.push_back(client);
    etcd_.push_back(std::make_unique<Subprocess>(
        std::vector<std::string>{"etcd",
                                 "--name",
                                 name(i),
                                 "--data-dir",
                                 (dir() / ("data-" + name(i))).string(),
                                 "--listen-client-urls",
                                 client,
                                 "--advertise-client-urls",
                                 client,
                                 "--listen-peer-urls",
                                 peer,
                                 "--initial-advertise-peer-urls",
                                 peer,
                                 "--initial-cluster",
                                 initial,
                                 "--initial-cluster-token",
                                 "ctl-" + std::to_string(getpid()),
                                 "--heartbeat-interval",
                                 "100",
                                 "--election-timeout",
                                 "1000"},
        (dir() / ("etcd-" + name(i) + ".log")).string()));
  }
  for (int i = 0; i < (with_agents ? members : 0); ++i) {
    auto adir = dir() / ("agent-" + name(i));
    std::filesystem::create_directories(adir);
    agents_.push_back(std::make_unique<AgentProcess>(
        adir, std::vector<std::string>{"--label", "member=" + name(i), "--label", "app=etcd"}));
  }
  if (!WaitFor([&] { return !EtcdctlLeader().empty(); }, std::chrono::seconds(20))) {
    std::ifstream log(dir() / ("etcd-" + name(0) + ".log"));
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    throw std::runtime_error("etcd cluster did not elect a leader; its first member's log ends: " +
                             text.substr(text.size() > 1500 ? text.size() - 1500 : 0));
  }
}

EtcdCluster::~EtcdCluster() {
  // A test that failed mid-fault may leave a member stopped: continue it so it can die.
  for (auto& e : etcd_) {
    if (e->Running()) ::kill(e->pid(), SIGCONT);
  }
  agents_.clear();
  for (auto& e : etcd_) {
    ::kill(e->pid(), SIGCONT);
    e->Stop(SIGKILL);
  }
}

std::string EtcdCluster::EndpointsCsv() const { return JoinCsv(endpoints_); }

std::vector<std::string> EtcdCluster::agent_addresses() const {
  std::vector<std::string> out;
  for (const auto& a : agents_) out.push_back("unix://" + a->socket());
  return out;
}

std::string EtcdCluster::AgentsCsv() const { return JoinCsv(agent_addresses()); }

std::string EtcdCluster::EtcdctlLeader() const {
  std::string out;
  if (RunCommand({"etcdctl", "--endpoints=" + EndpointsCsv(), "--command-timeout=1s", "endpoint",
                  "status", "-w", "json"},
                 &out) != 0) {
    return "";
  }
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return "";
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& st = j[i]["Status"];
    if (st["header"]["member_id"] == st["leader"]) {
      std::string ep = j[i].value("Endpoint", "");
      for (int m = 0; m < size(); ++m) {
        if (endpoints_[size_t(m)] == ep) return name(m);
      }
    }
  }
  return "";
}

char EtcdCluster::EtcdState(int i) const {
  std::ifstream in("/proc/" + std::to_string(etcd_pid(i)) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= stat.size()) return '?';
  return stat[close_paren + 2];
}

}  // namespace faultline::testing
