// controller/state without etcd: --state URL parsing and the embedded file store.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "controller/state/controller_state.h"
#include "controller/state/file_store.h"

namespace faultline::controller {
namespace {

TEST(StateUrl, EndpointsAndPrefix) {
  auto u = ParseStateUrl("etcd://10.0.0.1:2379,10.0.0.2:2379,[::1]:2379");
  EXPECT_EQ(u.endpoints,
            (std::vector<std::string>{"10.0.0.1:2379", "10.0.0.2:2379", "[::1]:2379"}));
  EXPECT_EQ(u.prefix, "/faultline/controller");
  u = ParseStateUrl("etcd://etcd-0.etcd:2379/team-a/faultline/");
  EXPECT_EQ(u.endpoints, (std::vector<std::string>{"etcd-0.etcd:2379"}));
  EXPECT_EQ(u.prefix, "/team-a/faultline");
}

TEST(StateUrl, BadUrlsNameTheFlagAndTheReason) {
  auto why = [](const std::string& url) {
    try {
      ParseStateUrl(url);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(why("https://a:2379"),
            "--state: \"https://a:2379\": not an etcd:// URL (expected "
            "etcd://HOST:PORT[,HOST:PORT...][/PREFIX])");
  EXPECT_NE(why("etcd://").find("no endpoint"), std::string::npos);
  EXPECT_NE(why("etcd:///p").find("no endpoint"), std::string::npos);
  EXPECT_NE(why("etcd://a").find("endpoint \"a\" is not HOST:PORT"), std::string::npos);
  EXPECT_NE(why("etcd://a:1,,b:2").find("endpoint \"\" is not HOST:PORT"), std::string::npos);
  EXPECT_NE(why("etcd://a:0").find("is not HOST:PORT"), std::string::npos);
  EXPECT_NE(why("etcd://a:65536").find("is not HOST:PORT"), std::string::npos);
  EXPECT_NE(why("etcd://:2379").find("is not HOST:PORT"), std::string::npos);
  EXPECT_NE(why("etcd://a:2379/").find("the key prefix is empty"), std::string::npos);
  EXPECT_NE(why("etcd://a:2379/x//y").find("empty part"), std::string::npos);
}

TEST(FileStore, DocumentsByKindAndIdWithOneOwner) {
  char tmpl[] = "/tmp/faultline-state-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::filesystem::path dir = tmpl;
  {
    FileStore store(dir);
    StateStore& s = store;
    s.Put("runs", "r1", {{"state", "RUNNING"}});
    s.Put("runs", "r2", {{"state", "PASSED"}});
    EXPECT_EQ(s.Get("runs", "r1")->at("state"), "RUNNING");
    EXPECT_FALSE(s.Get("runs", "none").has_value());
    s.Remove("runs", "r1");
    auto all = s.List("runs");
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all.begin()->first, "r2");
    EXPECT_THROW(s.Put("runs", "../x", {}), std::invalid_argument);
    EXPECT_THROW(FileStore second(dir), std::runtime_error) << "two controllers on one dir";
  }
  FileStore again(dir);  // the lock went with the first one
  EXPECT_EQ(again.Get("runs", "r2")->at("state"), "PASSED");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace faultline::controller
