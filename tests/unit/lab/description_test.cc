#include "deploy/lab/description.h"

#include <gtest/gtest.h>

namespace faultline::lab {
namespace {

LabInfo Sample() {
  LabInfo info;
  info.name = "demo";
  info.dir = "/var/lib/faultline/lab/demo";
  info.state = "up";
  info.subnet = "10.213.7.0/24";
  info.bridge = "fl00aabbbr";
  info.bridge_address = "10.213.7.1";
  info.etcd = "/usr/bin/etcd";
  info.agent = "/usr/sbin/faultline-agent";
  info.created_unix = 1700000000;
  info.creator_pid = 42;
  for (int i = 1; i <= 3; ++i) {
    MemberInfo m;
    m.name = "e" + std::to_string(i);
    m.netns = "fl-demo-" + m.name;
    m.veth = "fl00aabbe" + std::to_string(i);
    m.address = "10.213.7." + std::to_string(10 + i);
    m.client_url = "http://" + m.address + ":2379";
    m.peer_url = "http://" + m.address + ":2380";
    m.dir = info.dir + "/" + m.name;
    m.data_dir = m.dir + "/etcd";
    m.agent_socket = m.dir + "/agent.sock";
    m.agent_pid = 100 + i;
    m.agent_start_time = 123456789012ull + i;
    m.etcd_pid = 200 + i;
    m.etcd_start_time = 5;
    info.members.push_back(m);
  }
  info.controller.binary = "/usr/sbin/faultline-controller";
  info.controller.socket = info.dir + "/controller.sock";
  info.controller.state_dir = info.dir + "/controller";
  info.controller.metrics_listen = "10.213.7.1:9479";
  info.controller.pid = 300;
  info.controller.start_time = 77;
  return info;
}

TEST(LabDescription, RoundTrips) {
  LabInfo info = Sample();
  EXPECT_EQ(LabFromJson(ToJson(info)), info);
}

TEST(LabDescription, Ipv6LabRoundTripsAndOlderOnesAreIpv4) {
  LabInfo info = Sample();
  info.ipv6 = true;
  info.subnet6 = "fd00:fa17:213:7::/64";
  info.bridge_address6 = "fd00:fa17:213:7::1";
  info.members[0].address = "fd00:fa17:213:7::11";
  info.members[0].client_url = "http://[fd00:fa17:213:7::11]:2379";
  EXPECT_EQ(LabFromJson(ToJson(info)), info);
  EXPECT_TRUE(info.Endpoints().starts_with("http://[fd00:fa17:213:7::11]:2379,"));
  LabInfo old = LabFromJson(R"({"name":"x","dir":"/d","state":"up","subnet":"s","bridge":"b",
                                "bridge_address":"a","etcd":"/e","members":[]})");
  EXPECT_FALSE(old.ipv6);
  EXPECT_EQ(old.subnet6, "");
}

TEST(LabDescription, WithoutAControllerObjectTheLabHasNone) {
  // A description written before labs had a controller still loads.
  LabInfo info = LabFromJson(R"({"name":"x","dir":"/d","state":"up","subnet":"s","bridge":"b",
                                 "bridge_address":"a","etcd":"/e","members":[]})");
  EXPECT_EQ(info.controller, ControllerInfo{});
  EXPECT_EQ(info.controller.Address(), "");
  EXPECT_EQ(Sample().controller.Address(), "unix:///var/lib/faultline/lab/demo/controller.sock");
}

TEST(LabDescription, Endpoints) {
  EXPECT_EQ(Sample().Endpoints(),
            "http://10.213.7.11:2379,http://10.213.7.12:2379,http://10.213.7.13:2379");
  ASSERT_NE(Sample().Member("e2"), nullptr);
  EXPECT_EQ(Sample().Member("e2")->address, "10.213.7.12");
  EXPECT_EQ(Sample().Member("e9"), nullptr);
}

TEST(LabDescription, BadInputNamesTheField) {
  EXPECT_THROW(LabFromJson("not json"), std::invalid_argument);
  try {
    LabFromJson(R"({"name":"x","dir":"/d","state":"up","subnet":"s","bridge":"b",
                    "bridge_address":"a","etcd":"/e","members":[{"name":"e1"}]})");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("members[0].netns: missing"), std::string::npos)
        << e.what();
  }
  try {
    LabFromJson(R"({"name":"x","dir":"/d","state":"up","subnet":"s","bridge":"b",
                    "bridge_address":"a","etcd":"/e","members":[],"controller":{"pid":1}})");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("controller.binary: missing"), std::string::npos)
        << e.what();
  }
  try {
    LabFromJson(R"({"name":7})");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("name: wrong type"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace faultline::lab
