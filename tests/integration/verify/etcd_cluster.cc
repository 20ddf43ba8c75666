#include "tests/integration/verify/etcd_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "controller/verify/client.h"

namespace faultline::testing {

int Run(const std::vector<std::string>& argv, const std::string& log) {
  Subprocess p(argv, log);
  int st = p.Stop(0, std::chrono::seconds(60));  // signal 0: just wait
  return st;
}

EtcdCluster::EtcdCluster(int members) : dir_("faultline-verify-etcd") {
  token_ = "verify-" + std::to_string(getpid()) + "-" + dir_.path().filename().string();
  std::vector<int> used;
  auto fresh = [&] {
    while (true) {
      int p = FreePort();
      if (std::find(used.begin(), used.end(), p) == used.end()) {
        used.push_back(p);
        return p;
      }
    }
  };
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = "m" + std::to_string(i);
    m.client_port = fresh();
    m.peer_port = fresh();
    members_.push_back(std::move(m));
  }
  for (int i = 0; i < members; ++i) Start(i);
  WaitHealthy();
}

EtcdCluster::~EtcdCluster() {
  // Subprocess destructors SIGKILL and reap; a stopped (SIGSTOP) member dies the same way.
  members_.clear();
}

std::string EtcdCluster::client_endpoint(int i) const {
  return "127.0.0.1:" + std::to_string(members_[i].client_port);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(client_endpoint(i));
  return out;
}

std::string EtcdCluster::peer_url(int i) const {
  return "http://127.0.0.1:" + std::to_string(members_[i].peer_port);
}

std::filesystem::path EtcdCluster::data_dir(int i) const {
  return dir_.path() / (members_[i].name + ".etcd");
}

std::string EtcdCluster::initial_cluster() const {
  std::string s;
  for (int i = 0; i < size(); ++i) {
    s += (s.empty() ? "" : ",") + members_[i].name + "=" + peer_url(i);
  }
  return s;
}

std::string EtcdCluster::Log(int i) const {
  std::ifstream in(dir_.path() / (members_[i].name + ".log"));
  std::ostringstream s;
  s << in.rdbuf();
  std::string all = s.str();
  return all.size() > 4000 ? all.substr(all.size() - 4000) : all;
}

void EtcdCluster::Start(int i) {
  Member& m = members_[i];
  std::string client = "http://" + client_endpoint(i);
  std::vector<std::string> argv = {"/usr/bin/etcd",
                                   "--name",
                                   m.name,
                                   "--data-dir",
                                   data_dir(i).string(),
                                   "--listen-client-urls",
                                   client,
                                   "--advertise-client-urls",
                                   client,
                                   "--listen-peer-urls",
                                   peer_url(i),
                                   "--initial-advertise-peer-urls",
                                   peer_url(i),
                                   "--initial-cluster",
                                   initial_cluster(),
                                   "--initial-cluster-token",
                                   token_,
                                   "--initial-cluster-state",
                                   "new",
                                   "--logger",
                                   "zap",
                                   "--log-outputs",
                                   "stderr"};
  m.proc = std::make_unique<Subprocess>(argv, (dir_.path() / (m.name + ".log")).string());
}

void EtcdCluster::Stop(int i) {
  Member& m = members_[i];
  if (!m.proc) return;
  ::kill(m.proc->pid(), SIGCONT);
  if (m.proc->Stop(SIGTERM, std::chrono::seconds(10)) == -1) m.proc->Stop(SIGKILL);
  m.proc.reset();
}

void EtcdCluster::WaitHealthy(std::chrono::milliseconds limit) {
  for (int i = 0; i < size(); ++i) {
    bool ok = WaitFor(
        [&] {
          if (!members_[i].proc || !members_[i].proc->Running()) return true;
          // A fresh client per probe: a channel that failed once backs off before retrying.
          verify::ClientOptions o;
          o.timeout = std::chrono::milliseconds(500);
          verify::EtcdClient c({client_endpoint(i)}, o);
          verify::pb::RangeResponse resp;
          verify::pb::RangeRequest req;
          req.set_key("health");
          bool served = c.TryRange(0, req, &resp, o.timeout).ok();
          if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(100));
          return served;
        },
        limit);
    if (!ok || !members_[i].proc || !members_[i].proc->Running()) {
      throw std::runtime_error("etcd member " + members_[i].name + " did not become healthy:\n" +
                               Log(i));
    }
  }
}

}  // namespace faultline::testing
