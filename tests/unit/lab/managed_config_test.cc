#include <gtest/gtest.h>

#include "faults/core/errors.h"
#include "faults/process/managed.h"

namespace faultline::faults::process {
namespace {

FieldErrors ErrorsOf(const std::string& text) {
  try {
    ParseManagedConfig(text);
  } catch (const ValidationError& e) {
    return e.errors();
  }
  return {};
}

bool Has(const FieldErrors& errs, const std::string& field, const std::string& reason_part) {
  for (const auto& e : errs) {
    if (e.field == field && e.reason.find(reason_part) != std::string::npos) return true;
  }
  return false;
}

TEST(ManagedConfig, ParsesEveryField) {
  auto specs = ParseManagedConfig(R"({"processes": [{
      "name": "etcd", "argv": ["/usr/bin/etcd", "--name", "e1"], "env": {"A": "1"},
      "cwd": "/tmp", "netns": "/run/netns/x", "log": "/tmp/etcd.log", "restart": "on-failure",
      "backoff": "50ms", "max_backoff": "2s", "stop_signal": 2, "stop_grace": "3s",
      "ready": {"http": "http://10.0.0.1:2379/health", "interval": "20ms", "timeout": "5s"}}]})");
  ASSERT_EQ(specs.size(), 1u);
  const auto& s = specs[0];
  EXPECT_EQ(s.name, "etcd");
  EXPECT_EQ(s.argv.size(), 3u);
  EXPECT_EQ(s.env.at("A"), "1");
  EXPECT_EQ(s.cwd, "/tmp");
  EXPECT_EQ(s.netns, "/run/netns/x");
  EXPECT_EQ(s.restart, RestartPolicy::kOnFailure);
  EXPECT_EQ(s.backoff, std::chrono::milliseconds(50));
  EXPECT_EQ(s.max_backoff, std::chrono::seconds(2));
  EXPECT_EQ(s.stop_signal, 2);
  EXPECT_EQ(s.ready.kind, ReadinessProbe::Kind::kHttp);
  EXPECT_EQ(s.ready.host, "10.0.0.1");
  EXPECT_EQ(s.ready.port, 2379);
  EXPECT_EQ(s.ready.path, "/health");
  EXPECT_EQ(s.ready.timeout, std::chrono::seconds(5));
}

TEST(ManagedConfig, RoundTripsThroughJson) {
  ManagedSpec a;
  a.name = "x";
  a.argv = {"/bin/sleep", "100"};
  a.restart = RestartPolicy::kAlways;
  a.ready.kind = ReadinessProbe::Kind::kTcp;
  a.ready.host = "127.0.0.1";
  a.ready.port = 80;
  ManagedSpec b;
  b.name = "y";
  b.argv = {"/bin/true"};
  b.ready.kind = ReadinessProbe::Kind::kCommand;
  b.ready.command = {"/bin/true"};
  auto back = ParseManagedConfig(ManagedConfigToJson({a, b}));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].argv, a.argv);
  EXPECT_EQ(back[0].restart, RestartPolicy::kAlways);
  EXPECT_EQ(back[0].ready.port, 80);
  EXPECT_EQ(back[1].ready.command, b.ready.command);
}

TEST(ManagedConfig, AcceptsABareArray) {
  EXPECT_EQ(ParseManagedConfig(R"([{"name":"a","argv":["/bin/true"]}])").size(), 1u);
}

TEST(ManagedConfig, EveryErrorAtOnceWithFieldPaths) {
  auto errs = ErrorsOf(R"({"processes": [
      {"name": "bad name", "argv": ["etcd"], "restart": "sometimes", "cwd": "rel",
       "stop_signal": 99, "backoff": "fast", "colour": "red",
       "ready": {"tcp": "nohost", "http": "http://x/"}},
      {"argv": []},
      {"name": "dup", "argv": ["/bin/true"], "env": {"A=B": "x"}},
      {"name": "dup", "argv": ["/bin/true"], "ready": {"command": ["true"], "timeout": "0s"}}
  ]})");
  EXPECT_TRUE(Has(errs, "processes[0].name", "must match")) << FormatFieldErrors(errs);
  EXPECT_TRUE(Has(errs, "processes[0].argv[0]", "absolute path"));
  EXPECT_TRUE(Has(errs, "processes[0].restart", "never, on-failure or always"));
  EXPECT_TRUE(Has(errs, "processes[0].cwd", "absolute path"));
  EXPECT_TRUE(Has(errs, "processes[0].stop_signal", "1..64"));
  EXPECT_TRUE(Has(errs, "processes[0].backoff", ""));
  EXPECT_TRUE(Has(errs, "processes[0].colour", "unknown field"));
  EXPECT_TRUE(Has(errs, "processes[0].ready", "exactly one of"));
  EXPECT_TRUE(Has(errs, "processes[0].ready.tcp", "HOST:PORT"));
  EXPECT_TRUE(Has(errs, "processes[1].name", "required"));
  EXPECT_TRUE(Has(errs, "processes[1].argv", "non-empty"));
  EXPECT_TRUE(Has(errs, "processes[2].env.A=B", "without '='"));
  EXPECT_TRUE(Has(errs, "processes[3].name", "duplicate"));
  EXPECT_TRUE(Has(errs, "processes[3].ready.command[0]", "absolute path"));
  EXPECT_TRUE(Has(errs, "processes[3].ready.timeout", "positive"));
}

TEST(ManagedConfig, NotJsonOrWrongShape) {
  EXPECT_TRUE(Has(ErrorsOf("{"), "config", "not valid JSON"));
  EXPECT_TRUE(Has(ErrorsOf("{}"), "processes", "required"));
  EXPECT_TRUE(Has(ErrorsOf(R"({"processes": 3})"), "processes", "array"));
  EXPECT_TRUE(Has(ErrorsOf(R"({"procs": []})"), "procs", "unknown field"));
}

}  // namespace
}  // namespace faultline::faults::process
