// The etcd client's errors for endpoints nothing listens on and for bad endpoint or TLS flags,
// at the library level (the CLI's exit codes and messages on the lab are in
// lab_verify_test.cc, as are the checks, workload and history checks on real clusters).
#include <gtest/gtest.h>

#include "controller/verify/checks.h"
#include "tests/integration/verify/etcd_cluster.h"

namespace faultline::verify {
namespace {

TEST(VerifyIntegration, BadEndpointsGiveAClearError) {
  int port = faultline::testing::FreePort();  // nothing listens there
  std::string ep = "127.0.0.1:" + std::to_string(port);
  ClientOptions o;
  o.timeout = std::chrono::milliseconds(500);
  EtcdClient client({ep}, o);
  try {
    client.Status(0);
    FAIL() << "Status on a dead endpoint succeeded";
  } catch (const EtcdError& e) {
    std::string what = e.what();
    EXPECT_EQ(what.rfind("etcd " + ep + ": Status: ", 0), 0u) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos);
    EXPECT_EQ(e.endpoint(), ep);
  }
  CheckResult health = CheckHealth(client);
  EXPECT_FALSE(health.passed);
  EXPECT_EQ(health.summary.rfind("not answering: " + ep, 0), 0u) << health.summary;
  auto bad = [](const std::vector<std::string>& eps) {
    try {
      EtcdClient c(eps);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(bad({"localhost"}),
            "endpoints: \"localhost\" is not HOST:PORT (optionally with http:// or https://)");
  EXPECT_EQ(bad({"127.0.0.1:99999"}).substr(0, 30), "endpoints: \"127.0.0.1:99999\" i");
  EXPECT_EQ(bad({}), "endpoints: at least one is required");
  ClientOptions tls;
  tls.tls = true;
  tls.tls_files.ca_file = "/nonexistent/ca.pem";
  try {
    EtcdClient c({ep}, tls);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "tls ca: cannot read \"/nonexistent/ca.pem\"");
  }
}

}  // namespace
}  // namespace faultline::verify
