#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "tests/support/test_lab.h"

namespace faultline::testing {

// A gtest suite whose tests share one TestLab (bringing a lab up takes seconds): up before the
// suite's first test, down after its last, also when tests fail. Without root every test skips;
// if the lab did not come up, every test fails with the reason.
//   class MySuite : public SharedLabTest {
//     static void SetUpTestSuite() { StartLab(options); }  // optional: default options
//   };
class SharedLabTest : public ::testing::Test {
 protected:
  static void StartLab(lab::LabOptions options = {}) {
    if (::geteuid() != 0) return;
    try {
      lab_ = std::make_unique<TestLab>(std::move(options));
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void SetUpTestSuite() { StartLab(); }
  static void TearDownTestSuite() {
    lab_.reset();
    setup_error_.clear();
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the lab needs root";
    ASSERT_NE(lab_, nullptr) << "lab up failed: " << setup_error_;
  }

  static inline std::unique_ptr<TestLab> lab_;
  static inline std::string setup_error_;
};

}  // namespace faultline::testing
