// The families' host-free surface (faults/specs, faults/<family>/spec.h): one name table per enum
// that round-trips, the process one-shot rule, and kinds.
#include "faults/specs/specs.h"

#include <gtest/gtest.h>

#include "faults/core/names.h"
#include "faults/io/spec.h"
#include "faults/net/spec.h"
#include "faults/process/spec.h"
#include "faults/stress/spec.h"

namespace faultline::faults {
namespace {

template <typename E>
void ExpectRoundTrip() {
  const auto names = Names<E>();
  ASSERT_FALSE(names.empty());
  for (const auto& [name, value] : names) {
    EXPECT_EQ(NameOf(value), name);
    auto back = ParseName<E>(name);
    ASSERT_TRUE(back.has_value()) << name;
    EXPECT_EQ(*back, value) << name;
    // YAML and flags may write '_' for '-' and any case.
    std::string upper = name;
    for (auto& c : upper) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
    EXPECT_EQ(ParseName<E>(upper), value) << upper;
  }
}

TEST(NameTables, EveryFamilyEnumRoundTrips) {
  ExpectRoundTrip<v1::IoFault::Action>();
  ExpectRoundTrip<v1::IoFault::Distribution>();
  ExpectRoundTrip<v1::IoFault::CorruptMode>();
  ExpectRoundTrip<v1::IoFault::Side>();
  ExpectRoundTrip<v1::NetFault::Action>();
  ExpectRoundTrip<v1::NetFault::Protocol>();
  ExpectRoundTrip<v1::NetFault::Direction>();
  ExpectRoundTrip<v1::NetFault::Backend>();
  ExpectRoundTrip<v1::NetFault::Distribution>();
  ExpectRoundTrip<v1::ProcessFault::Action>();
  ExpectRoundTrip<v1::StressFault::Action>();
}

TEST(NameTables, OneSpellingPerValue) {
  // The CLI's `inject io enospc-after` and the fault kind "io/enospc-after" are one name.
  EXPECT_EQ(io::ActionName(v1::IoFault::ENOSPC_AFTER), "enospc-after");
  EXPECT_EQ(net::ActionName(v1::NetFault::PARTITION), "partition");
  // The enum's own prefix is not part of the name people type.
  EXPECT_EQ(NameOf(v1::NetFault::PROTOCOL_ANY), "any");
  EXPECT_EQ(ParseName<v1::NetFault::Protocol>("tcp"), v1::NetFault::TCP);
  // Placeholders have no name and cannot be chosen.
  EXPECT_EQ(NameOf(v1::IoFault::ACTION_UNSPECIFIED), "unspecified");
  EXPECT_FALSE(ParseName<v1::IoFault::Action>("unspecified").has_value());
  EXPECT_FALSE(ParseName<v1::IoFault::Action>("enospc").has_value());
  EXPECT_EQ(Choices<v1::StressFault::Action>(), "cpu or memory");
}

TEST(Kinds, FamilySlashActionFromTheDescriptors) {
  v1::FaultSpec s;
  EXPECT_EQ(KindOf(s), "unknown");
  s.mutable_io()->set_action(v1::IoFault::ENOSPC_AFTER);
  EXPECT_EQ(KindOf(s), "io/enospc-after");
  s.mutable_process()->set_action(v1::ProcessFault::KILL);
  EXPECT_EQ(KindOf(s), "process/kill");
  s.mutable_syscall()->set_managed("etcd");
  EXPECT_EQ(KindOf(s), "syscall");
}

v1::FaultSpec Process(v1::ProcessFault::Action a, int restart_after_s = 0) {
  v1::FaultSpec s;
  s.mutable_process()->set_action(a);
  s.mutable_process()->mutable_target()->set_managed("etcd");
  if (restart_after_s > 0)
    s.mutable_process()->mutable_restart_after()->set_seconds(restart_after_s);
  return s;
}

TEST(OneShotRule, ProcessActionsAndTheIoCrashCommand) {
  EXPECT_TRUE(OneShot(Process(v1::ProcessFault::SIGNAL)));
  EXPECT_TRUE(OneShot(Process(v1::ProcessFault::KILL)));
  EXPECT_TRUE(OneShot(Process(v1::ProcessFault::RESTART)));
  EXPECT_FALSE(OneShot(Process(v1::ProcessFault::PAUSE)));
  // A kill that restarts the process later stays active until the restart.
  EXPECT_FALSE(OneShot(Process(v1::ProcessFault::KILL, 5)));
  EXPECT_EQ(ImpliedDuration(Process(v1::ProcessFault::KILL, 5)), std::chrono::seconds(5));
  EXPECT_EQ(ImpliedDuration(Process(v1::ProcessFault::PAUSE)).count(), 0);
  v1::FaultSpec io;
  io.mutable_io()->set_action(v1::IoFault::LATENCY);
  EXPECT_FALSE(OneShot(io));
  // The crash command is over once the crash is: an experiment step needs no duration for it.
  io.mutable_io()->set_action(v1::IoFault::CRASH);
  EXPECT_TRUE(OneShot(io));
  EXPECT_FALSE(OneShot(Process(v1::ProcessFault::REJOIN)));
}

TEST(OneShotRule, WhatNeedsADuration) {
  EXPECT_TRUE(NeedsDuration(Process(v1::ProcessFault::PAUSE)));
  EXPECT_FALSE(NeedsDuration(Process(v1::ProcessFault::KILL)));
  EXPECT_FALSE(NeedsDuration(Process(v1::ProcessFault::KILL, 5)));
  // Not one-shot (it holds its member down), yet the run ends it once the member is back.
  EXPECT_FALSE(NeedsDuration(Process(v1::ProcessFault::REJOIN)));
  v1::FaultSpec io;
  io.mutable_io()->set_action(v1::IoFault::LATENCY);
  EXPECT_TRUE(NeedsDuration(io));
  io.mutable_io()->set_action(v1::IoFault::CRASH);
  EXPECT_FALSE(NeedsDuration(io));
}

TEST(SubmitTimeValidation, NeedsNoHostAndNamesTheField) {
  v1::FaultSpec io;
  io.mutable_io()->set_action(v1::IoFault::LATENCY);
  io.mutable_io()->set_mount("/var/lib/etcd");
  auto e = ValidateSpec(io);
  ASSERT_EQ(e.size(), 1u) << FormatFieldErrors(e);
  EXPECT_EQ(e[0].field, "io.delay");

  v1::FaultSpec net;
  net.mutable_net()->set_action(v1::NetFault::DELAY);
  net.mutable_net()->mutable_delay()->set_seconds(1);
  net.mutable_net()->add_to("10.0.0.300/32");
  // A backend that could never serve the action is refused without asking a node.
  net.mutable_net()->set_backend(v1::NetFault::NFTABLES);
  e = ValidateSpec(net);
  ASSERT_EQ(e.size(), 1u) << FormatFieldErrors(e);
  EXPECT_EQ(e[0].field, "net.to[0]");
  net.mutable_net()->set_to(0, "10.0.0.3/32");
  e = ValidateSpec(net);
  ASSERT_EQ(e.size(), 1u) << FormatFieldErrors(e);
  EXPECT_EQ(e[0].field, "net.backend");

  // The node's exemptions are the agent's check, not the spec's.
  net.mutable_net()->set_backend(v1::NetFault::AUTO);
  net.mutable_net()->add_ports("2379");
  EXPECT_TRUE(ValidateSpec(net).empty());
  net::NetOptions opts;
  opts.exempt_ports.push_back(2379);
  e = net::ValidateNet(net.net(), opts, {});
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0].field, "net.ports[0]");

  v1::FaultSpec stress;
  stress.mutable_stress()->set_action(v1::StressFault::CPU);
  stress.mutable_stress()->set_load(150);
  e = ValidateSpec(stress);
  ASSERT_EQ(e.size(), 1u) << FormatFieldErrors(e);
  EXPECT_EQ(e[0].field, "stress.load");

  v1::FaultSpec sc;
  sc.mutable_syscall()->set_managed("etcd");
  sc.mutable_syscall()->add_syscalls("no_such_syscall");
  sc.mutable_syscall()->set_error("EIO");
  e = ValidateSpec(sc);
  ASSERT_EQ(e.size(), 1u) << FormatFieldErrors(e);
  EXPECT_EQ(e[0].field, "syscall.syscalls[0]");

  EXPECT_TRUE(ValidateSpec(Process(v1::ProcessFault::KILL, 5)).empty());
  auto bad = Process(v1::ProcessFault::RESTART);
  bad.mutable_process()->mutable_target()->set_pid(1);
  e = ValidateSpec(bad);
  ASSERT_EQ(e.size(), 1u) << FormatFieldErrors(e);
  EXPECT_EQ(e[0].field, "process.target");
}

}  // namespace
}  // namespace faultline::faults
