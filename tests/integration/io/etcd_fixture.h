#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "faults/io/overlay.h"
#include "io_test_util.h"

namespace faultline::faults::io {

// A one-member etcd on loopback whose data dir is covered by an in-process overlay: what the IO
// tests that need a real etcd (faults on its WAL and db, crashes) start from.
class EtcdOnOverlayFixture : public ::testing::Test {
 protected:
  explicit EtcdOnOverlayFixture(std::string tag) : tag_(std::move(tag)) {}

  void SetUp() override {
    if (::access("/usr/bin/etcd", X_OK) != 0) GTEST_SKIP() << "etcd-server is not installed";
    tmp_ = std::make_unique<io_test::TempDir>(tag_);
    data_ = tmp_->path() / "data";
    std::filesystem::create_directory(data_);
    std::filesystem::permissions(data_, std::filesystem::perms::owner_all);
    log_ = (tmp_->path() / "etcd.log").string();
    port_ = io_test::FreePort();
    client_ = "http://127.0.0.1:" + std::to_string(port_);
    peer_ = "http://127.0.0.1:" + std::to_string(io_test::FreePort());
    overlay_ = std::make_unique<Overlay>(data_);
  }
  void TearDown() override {
    etcd_.reset();  // before the overlay: etcd holds files open under it
    overlay_.reset();
    tmp_.reset();
  }

  void StartEtcd(bool wait_healthy = true) {
    etcd_ = std::make_unique<io_test::Child>(
        std::vector<std::string>{"/usr/bin/etcd", "--name", "m1", "--data-dir", data_.string(),
                                 "--listen-client-urls", client_, "--advertise-client-urls",
                                 client_, "--listen-peer-urls", peer_,
                                 "--initial-advertise-peer-urls", peer_, "--initial-cluster",
                                 "m1=" + peer_, "--initial-cluster-state", "new"},
        log_);
    if (!wait_healthy) return;
    ASSERT_TRUE(io_test::WaitFor(
        [&] { return Ctl("endpoint health").find("is healthy") != std::string::npos; },
        std::chrono::seconds(30)))
        << Tail();
  }
  std::string Ctl(const std::string& args, const std::string& timeout = "3s") {
    return io_test::Run("ETCDCTL_API=3 /usr/bin/etcdctl --endpoints=" + client_ +
                        " --command-timeout=" + timeout + " " + args + " 2>&1");
  }
  // The end of etcd's log, for failure messages.
  std::string Tail() {
    std::string log = io_test::Slurp(log_);
    return log.substr(log.size() > 3000 ? log.size() - 3000 : 0);
  }

  std::unique_ptr<io_test::TempDir> tmp_;
  std::filesystem::path data_;
  std::string log_, client_, peer_;
  int port_ = 0;
  std::unique_ptr<Overlay> overlay_;
  std::unique_ptr<io_test::Child> etcd_;

 private:
  std::string tag_;
};

}  // namespace faultline::faults::io
