// Listen/dial addresses, the loopback rule and the all-or-nothing mTLS files.
#include "proto/transport/address.h"

#include <gtest/gtest.h>

#include "proto/transport/server.h"
#include "proto/transport/tls.h"

namespace faultline::transport {
namespace {

std::string Error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(ParseListen, UnixAndTcpForms) {
  auto u = ParseListen("unix:///run/x.sock");
  EXPECT_TRUE(u.unix_socket);
  EXPECT_EQ(u.path, "/run/x.sock");
  EXPECT_EQ(u.grpc_uri(), "unix:///run/x.sock");
  EXPECT_TRUE(ParseListen("/run/y.sock").unix_socket);
  auto t = ParseListen("tcp://10.0.0.1:7000");
  EXPECT_FALSE(t.unix_socket);
  EXPECT_EQ(t.grpc_uri(), "10.0.0.1:7000");
  EXPECT_EQ(ParseListen("[::1]:0").host_port, "[::1]:0");
}

TEST(ParseListen, ErrorsNameTheFlagAndTheReason) {
  EXPECT_EQ(Error([] { ParseListen("unix://run/x", "--listen"); }),
            "--listen unix://run/x: unix socket path must be absolute");
  EXPECT_EQ(Error([] { ParseListen("10.0.0.1", "--listen"); }),
            "--listen 10.0.0.1: want unix:///PATH or tcp://HOST:PORT");
  EXPECT_EQ(Error([] { ParseListen("h:7x", "--register"); }),
            "--register h:7x: port must be a number");
  EXPECT_EQ(Error([] { ParseListen(":7000"); }),
            "--listen :7000: want unix:///PATH or tcp://HOST:PORT");
}

TEST(Loopback, OnlyUnixSocketsAndLoopbackHosts) {
  for (const char* a : {"unix:///x", "/x", "127.0.0.1:1", "127.9.9.9:1", "localhost:1", "[::1]:1",
                        "tcp://127.0.0.1:5"}) {
    EXPECT_TRUE(IsLoopback(a)) << a;
  }
  for (const char* a : {"10.0.0.1:1", "128.0.0.1:1", "example.com:1", "[::2]:1", "0.0.0.0:1",
                        "tcp://192.168.1.1:5"}) {
    EXPECT_FALSE(IsLoopback(a)) << a;
  }
  EXPECT_TRUE(ParseListen("127.0.0.1:0").loopback());
  EXPECT_FALSE(ParseListen("0.0.0.0:0").loopback()) << "every interface is not loopback";
}

TEST(DialTarget, NormalisesTheForms) {
  EXPECT_EQ(DialTarget("/run/a.sock"), "unix:///run/a.sock");
  EXPECT_EQ(DialTarget("unix:///run/a.sock"), "unix:///run/a.sock");
  EXPECT_EQ(DialTarget("tcp://h:1"), "h:1");
  EXPECT_EQ(DialTarget("h:1"), "h:1");
}

TEST(Dial, PlaintextOnlyToUnixSocketsAndLoopback) {
  EXPECT_NE(Dial("/nonexistent.sock", {}), nullptr);
  EXPECT_NE(Dial("127.0.0.1:1", {}), nullptr);
  EXPECT_EQ(Error([] { Dial("10.1.2.3:7000", {}); }),
            "10.1.2.3:7000 is off loopback: give --tls-ca, --tls-cert and --tls-key (plaintext is "
            "allowed only on loopback)");
  TlsFiles agent{.ca_flag = "--agent-tls-ca"};
  EXPECT_NE(Error([&] { Dial("10.1.2.3:7000", agent); }).find("--agent-tls-ca"), std::string::npos);
  // With a CA the files are read up front, so a wrong path is reported by its flag.
  EXPECT_EQ(Error([] { Dial("10.1.2.3:7000", {.ca = "/nonexistent/ca.crt"}); }),
            "--tls-ca: cannot read \"/nonexistent/ca.crt\"");
  EXPECT_EQ(Error([] { Dial("10.1.2.3:7000", {.ca = "/etc/hostname", .cert = "/etc/hostname"}); }),
            "a client certificate needs both --tls-cert and --tls-key");
}

TEST(TlsFiles, AllOrNone) {
  TlsFiles server{.ca_flag = "--tls-client-ca"};
  server.RequireAllOrNone();
  server.cert = "c";
  EXPECT_EQ(Error([&] { server.RequireAllOrNone(); }),
            "mTLS needs all of --tls-cert, --tls-key and --tls-client-ca (missing --tls-client-ca, "
            "--tls-key)");
  server.key = "k";
  server.ca = "a";
  server.RequireAllOrNone();
}

TEST(Listeners, TcpOffLoopbackNeedsMtls) {
  EXPECT_EQ(Error([] { Listeners({"tcp://10.0.0.1:7000"}, {.ca_flag = "--tls-client-ca"}, {}); }),
            "--listen 10.0.0.1:7000 is off loopback: give --tls-cert, --tls-key and "
            "--tls-client-ca (plaintext is allowed only on loopback)");
  EXPECT_EQ(Error([] { Listeners({"0.0.0.0:7000"}, {}, {}); }).substr(0, 38),
            "--listen 0.0.0.0:7000 is off loopback:");
  // Loopback and unix sockets may be plaintext.
  Listeners ok({"unix:///tmp/never-bound.sock", "127.0.0.1:0"}, {}, {});
  EXPECT_FALSE(ok.tls());
  EXPECT_EQ(ok.addresses().size(), 2u);
  EXPECT_NE(Error([] { Listeners({}, {}, {}); }), "");
}

TEST(ServerFlags, EmptyAllowlistMeansAnyCertificateOfTheCa) {
  ServerFlags f{.allowed_clients = {""}};
  EXPECT_EQ(f.AllowedClients(), std::vector<std::string>{"*"});
  f.allowed_clients = {"a", "", "b"};
  EXPECT_EQ(f.AllowedClients(), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace faultline::transport
