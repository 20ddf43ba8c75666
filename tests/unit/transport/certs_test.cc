// `faultline certs init`: what it writes is checked with OpenSSL's own verifier, not our code.
#include "proto/transport/certs.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <memory>

#include "tests/support/subprocess.h"

namespace faultline::transport {
namespace {

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using Cert = std::unique_ptr<X509, X509Free>;

Cert Load(const std::filesystem::path& p) {
  FILE* f = std::fopen(p.c_str(), "r");
  if (f == nullptr) return nullptr;
  Cert c(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  return c;
}

std::string CommonName(X509* c) {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, buf, sizeof buf);
  return buf;
}

// OpenSSL's verdict on `leaf` chained to `ca` for `purpose` (X509_PURPOSE_SSL_SERVER/CLIENT),
// and, if given, for `host` (a DNS name or IP).
bool Verifies(X509* ca, X509* leaf, int purpose, const std::string& host = "") {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_add_cert(store.get(), ca);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  if (!host.empty()) {
    if (host.find_first_not_of("0123456789.:") == std::string::npos) {
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    }
  }
  return X509_verify_cert(ctx.get()) == 1;
}

TEST(CertsInit, EveryRoleVerifiesForWhatItDoesAndNothingElse) {
  testing::TempDir dir("faultline-certs");
  CertsOptions o;
  o.dir = dir.path();
  o.agents = {"10.9.0.11", "node-b"};
  o.controller_hosts = {"10.9.0.1", "ctl.example", "127.0.0.1"};
  auto files = InitCerts(o);
  EXPECT_EQ(files.size(), 10u);
  Cert ca = Load(o.dir / "ca.crt"), ctl = Load(o.dir / "controller.crt"),
       cli = Load(o.dir / "cli.crt"), a1 = Load(o.dir / "10.9.0.11.crt"),
       a2 = Load(o.dir / "node-b.crt");
  ASSERT_TRUE(ca && ctl && cli && a1 && a2);

  EXPECT_EQ(CommonName(ctl.get()), kControllerName);
  EXPECT_EQ(CommonName(cli.get()), kCliName);
  EXPECT_EQ(CommonName(a1.get()), std::string(kAgentNamePrefix) + "10.9.0.11");
  EXPECT_EQ(CommonName(a2.get()), std::string(kAgentNamePrefix) + "node-b");

  // The controller serves at its --controller-host names and is a client of agents.
  EXPECT_TRUE(Verifies(ca.get(), ctl.get(), X509_PURPOSE_SSL_SERVER, "10.9.0.1"));
  EXPECT_TRUE(Verifies(ca.get(), ctl.get(), X509_PURPOSE_SSL_SERVER, "ctl.example"));
  EXPECT_FALSE(Verifies(ca.get(), ctl.get(), X509_PURPOSE_SSL_SERVER, "10.9.0.2"));
  EXPECT_TRUE(Verifies(ca.get(), ctl.get(), X509_PURPOSE_SSL_CLIENT));
  // Agents serve at their own name (and the shared --agent-host ones), and register as clients.
  EXPECT_TRUE(Verifies(ca.get(), a1.get(), X509_PURPOSE_SSL_SERVER, "10.9.0.11"));
  EXPECT_FALSE(Verifies(ca.get(), a1.get(), X509_PURPOSE_SSL_SERVER, "10.9.0.12"));
  EXPECT_TRUE(Verifies(ca.get(), a2.get(), X509_PURPOSE_SSL_SERVER, "node-b"));
  EXPECT_TRUE(Verifies(ca.get(), a2.get(), X509_PURPOSE_SSL_SERVER, "127.0.0.1"));
  EXPECT_TRUE(Verifies(ca.get(), a1.get(), X509_PURPOSE_SSL_CLIENT));
  // Every agent also answers to one shared name (clients dialing nodes by unlisted addresses).
  EXPECT_TRUE(Verifies(ca.get(), a1.get(), X509_PURPOSE_SSL_SERVER, kAgentServerName));
  EXPECT_TRUE(Verifies(ca.get(), a2.get(), X509_PURPOSE_SSL_SERVER, kAgentServerName));
  EXPECT_FALSE(Verifies(ca.get(), ctl.get(), X509_PURPOSE_SSL_SERVER, kAgentServerName));
  // The CLI is a client only.
  EXPECT_TRUE(Verifies(ca.get(), cli.get(), X509_PURPOSE_SSL_CLIENT));
  EXPECT_FALSE(Verifies(ca.get(), cli.get(), X509_PURPOSE_SSL_SERVER));
  // A leaf cannot sign: the CA is the only issuer.
  EXPECT_FALSE(Verifies(cli.get(), a1.get(), X509_PURPOSE_SSL_CLIENT));

  struct stat st {};
  ASSERT_EQ(::stat((o.dir / "controller.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((o.dir / "ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(CertsInit, RefusesOverwritesAndClashingAgentNames) {
  testing::TempDir dir("faultline-certs");
  CertsOptions o;
  o.dir = dir.path();
  InitCerts(o);
  auto before = Load(o.dir / "ca.crt");
  EXPECT_THROW(InitCerts(o), std::runtime_error);
  // Nothing was replaced by the refused run.
  EXPECT_EQ(X509_cmp(before.get(), Load(o.dir / "ca.crt").get()), 0);
  o.force = true;
  InitCerts(o);
  EXPECT_NE(X509_cmp(before.get(), Load(o.dir / "ca.crt").get()), 0);

  for (const auto& bad :
       std::vector<std::vector<std::string>>{{"controller"}, {"a", "a"}, {"../x"}, {""}}) {
    o.agents = bad;
    try {
      InitCerts(o);
      ADD_FAILURE() << "accepted agents " << ::testing::PrintToString(bad);
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()).rfind("--agent ", 0), 0u) << e.what();
    }
  }
}

}  // namespace
}  // namespace faultline::transport
