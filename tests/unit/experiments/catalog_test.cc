#include <gtest/gtest.h>

#include <filesystem>

#include "experiments/loader.h"
#include "test_util.h"

namespace faultline::experiments {
namespace {

TEST(Catalog, Placeholder) { SUCCEED(); }

}  // namespace
}  // namespace faultline::experiments
