#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <optional>

#include "faults/net/probe.h"
#include "net_lab.h"

namespace faultline::faults::net::testing {

// A test in the two-namespace lab: b's servers running and the test's thread in a for the test's
// life, and the kernel probed once per binary. A fixture deriving from it calls SetUp() first and
// returns if IsSkipped(), and calls TearDown() last, after ending its own faults.
class NetLabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    lab_ = std::make_unique<Lab>();
    servers_ = std::make_unique<PeerServers>(lab_->b());
    in_a_ = std::make_unique<InNetns>(lab_->a());
    if (!caps_) caps_ = ProbeKernel();
  }
  void TearDown() override {
    in_a_.reset();
    servers_.reset();
    lab_.reset();
  }

  static inline std::optional<Capabilities> caps_;
  std::unique_ptr<Lab> lab_;
  std::unique_ptr<PeerServers> servers_;
  std::unique_ptr<InNetns> in_a_;
};

}  // namespace faultline::faults::net::testing
