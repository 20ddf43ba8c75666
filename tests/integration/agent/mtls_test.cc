// TCP listeners: mTLS with real certificates; clients without a valid certificate are refused.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "tests/support/certs.h"
#include "tests/support/subprocess.h"

namespace faultline::testing {
namespace {

using namespace std::chrono_literals;

int Sh(const std::string& cmd) { return WEXITSTATUS(std::system(cmd.c_str())); }

class MtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "integration tests run as root";
    if (Sh("command -v openssl >/dev/null") != 0) GTEST_SKIP() << "openssl not installed";
    d_ = dir_.path().string();
    // The project's own CA and certificates, as an operator would make them...
    ASSERT_EQ(Sh(Binary("cli/faultline") + " certs init --dir " + d_ + " >/dev/null"), 0);
    // ...a stranger's CA with a client certificate, and a client certificate from our CA that
    // carries an identity agents must not accept.
    MakeCa(d_, "stranger-ca");
    IssueClientCert(d_, "stranger", "faultline-cli", "stranger-ca");
    IssueClientCert(d_, "impostor", "someone-else", "ca");
  }

  // Starts the agent on an ephemeral loopback port with mTLS; returns "127.0.0.1:PORT".
  std::string StartAgent() {
    agent_ = std::make_unique<Subprocess>(
        std::vector<std::string>{Binary("agent/faultline-agent"), "--listen",
                                 "unix://" + d_ + "/agent.sock", "--listen", "tcp://127.0.0.1:0",
                                 "--state-dir", d_ + "/state", "--tls-cert", d_ + "/agent.crt",
                                 "--tls-key", d_ + "/agent.key", "--tls-client-ca", d_ + "/ca.crt"},
        d_ + "/agent.log");
    std::smatch m;
    std::string log;
    std::regex re("127\\.0\\.0\\.1:0 \\(mTLS\\) port ([0-9]+)");
    EXPECT_TRUE(WaitFor(
        [&] {
          std::ifstream in(d_ + "/agent.log");
          std::stringstream ss;
          ss << in.rdbuf();
          log = ss.str();
          return std::regex_search(log, m, re);
        },
        10s))
        << log;
    return "127.0.0.1:" + m[1].str();
  }

  std::string Out() const {
    std::ifstream in(d_ + "/out");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  int Cli(const std::string& args) {
    return Sh(Binary("cli/faultline") + " " + args + " status >" + d_ + "/out 2>&1");
  }

  TempDir dir_{"faultline-mtls"};
  std::string d_;
  std::unique_ptr<Subprocess> agent_;
};

TEST_F(MtlsTest, OnlyTheControllerAndCliIdentitiesFromTheConfiguredCaGetIn) {
  std::string addr = StartAgent();
  std::string ca = " --agent " + addr + " --tls-ca " + d_ + "/ca.crt";
  auto as = [&](const std::string& who) {
    return ca + " --tls-cert " + d_ + "/" + who + ".crt --tls-key " + d_ + "/" + who + ".key";
  };
  EXPECT_EQ(Cli(as("cli")), 0) << Out();
  EXPECT_EQ(Cli(as("controller")), 0) << Out();
  // Signed by our CA but not an allowed identity: refused by name.
  EXPECT_NE(Cli(as("impostor")), 0);
  EXPECT_NE(Out().find("not allowed"), std::string::npos) << Out();
  // No client certificate, a certificate from another CA, and plaintext: refused.
  EXPECT_NE(Cli(ca), 0);
  EXPECT_NE(Cli(as("stranger")), 0);
  EXPECT_NE(Cli("--agent " + addr), 0);
  // The unix socket (local, permission-guarded) stays plaintext.
  EXPECT_EQ(Cli("--agent " + d_ + "/agent.sock"), 0) << Out();
}

}  // namespace
}  // namespace faultline::testing
