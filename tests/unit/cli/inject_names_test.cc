// The CLI names fault actions and enum flags from the families' name tables: every subcommand of
// `faultline inject <family>` is the family's name for an action, and back.
#include <gtest/gtest.h>

#include "cli/inject_command.h"
#include "faults/core/names.h"

namespace faultline::cli {
namespace {

std::vector<std::string> Subcommands(CLI::App* app) {
  std::vector<std::string> out;
  for (auto* c : app->get_subcommands({})) out.push_back(c->get_name());
  std::sort(out.begin(), out.end());
  return out;
}

template <typename Enum>
std::vector<std::string> TableNames() {
  std::vector<std::string> out;
  for (const auto& [name, value] : faults::Names<Enum>()) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

class InjectNames : public ::testing::Test {
 protected:
  InjectNames() { AddInjectCommand(app_, g_); }
  CLI::App* Family(const std::string& name) {
    return app_.get_subcommand("inject")->get_subcommand(name);
  }
  CLI::App app_;
  GlobalOptions g_;
};

TEST_F(InjectNames, ActionSubcommandsAreTheFamiliesNames) {
  EXPECT_EQ(Subcommands(Family("io")), TableNames<v1::IoFault::Action>());
  EXPECT_EQ(Subcommands(Family("net")), TableNames<v1::NetFault::Action>());
  EXPECT_EQ(Subcommands(Family("process")), TableNames<v1::ProcessFault::Action>());
  EXPECT_EQ(Subcommands(Family("stress")), TableNames<v1::StressFault::Action>());
}

TEST_F(InjectNames, OldIoNameStaysAnAlias) {
  // `faultline inject io enospc` (README) reaches the enospc-after action.
  auto* cmd = Family("io")->get_subcommand("enospc");
  ASSERT_NE(cmd, nullptr);
  EXPECT_EQ(cmd->get_name(), "enospc-after");
}

TEST(EnumFlags, ParseWhatTheTableNamesAndNameTheChoices) {
  for (const auto& [name, value] : faults::Names<v1::NetFault::Protocol>()) {
    EXPECT_EQ(EnumFlag<v1::NetFault::Protocol>("--protocol", name), value);
  }
  try {
    EnumFlag<v1::NetFault::Direction>("--direction", "sideways");
    FAIL() << "accepted a bad direction";
  } catch (const CLI::ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find("egress, ingress or both"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace faultline::cli
