#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace faultline::testing {

// A real etcd cluster of Debian's /usr/bin/etcd on 127.0.0.1 with kernel-chosen free ports and
// data dirs under one temp dir. Every member is a Subprocess: killed and reaped when the cluster
// goes out of scope, even if the test failed (a SIGSTOPped member included).
class EtcdCluster {
 public:
  explicit EtcdCluster(int members = 3);
  ~EtcdCluster();

  int size() const { return static_cast<int>(members_.size()); }
  std::string client_endpoint(int i) const;
  std::vector<std::string> endpoints() const;
  std::string name(int i) const { return members_[i].name; }
  pid_t pid(int i) const { return members_[i].proc->pid(); }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path data_dir(int i) const;
  std::string initial_cluster() const;
  std::string token() const { return token_; }
  std::string peer_url(int i) const;

  void Stop(int i);   // SIGTERM and wait
  void Start(int i);  // (re)start on the same data dir and ports
  // Waits until every member answers a linearizable read; throws with the logs if not.
  void WaitHealthy(std::chrono::milliseconds limit = std::chrono::seconds(30));
  std::string Log(int i) const;

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    std::unique_ptr<Subprocess> proc;
  };
  TempDir dir_;
  std::string token_;
  std::vector<Member> members_;
};

// Runs a command to completion (stdout+stderr to `log`); returns its exit status.
int Run(const std::vector<std::string>& argv, const std::string& log);

}  // namespace faultline::testing
