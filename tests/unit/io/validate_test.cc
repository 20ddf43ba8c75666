#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include "faults/core/registry.h"
#include "faults/io/io_faults.h"

namespace faultline::faults::io {
namespace {

class IoValidateTest : public ::testing::Test {
 protected:
  IoValidateTest() { RegisterIoFaults(registry_, manager_); }

  // Validates a FaultSpec given in protobuf text format; returns "field: reason" per error.
  std::vector<std::string> Errors(const std::string& text) {
    v1::FaultSpec spec;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
    std::vector<std::string> out;
    for (const auto& e : registry_.Validate(spec)) out.push_back(e.field + ": " + e.reason);
    return out;
  }
  bool HasField(const std::vector<std::string>& errs, const std::string& field) {
    for (const auto& e : errs) {
      if (e.rfind(field + ": ", 0) == 0) return true;
    }
    return false;
  }

  OverlayManager manager_{"/nonexistent/faultline-validate-test"};  // never mounts
  Registry registry_;
};

TEST_F(IoValidateTest, GoodSpecsPass) {
  EXPECT_TRUE(Errors(R"(io { action: LATENCY mount: "/var/lib/etcd" path: "**/*.wal"
                             methods: "fdatasync" delay { nanos: 100000000 } percent: 50 })")
                  .empty());
  EXPECT_TRUE(Errors(R"(io { action: ERRNO mount: "/d" errnos { name: "EIO" }
                             errnos { name: "EROFS" weight: 3 } max_count: 5 })")
                  .empty());
  EXPECT_TRUE(Errors(R"(io { action: SHORT mount: "/d" short_fraction: 0.5 })").empty());
  EXPECT_TRUE(Errors(R"(io { action: CORRUPT mount: "/d" corrupt_side: WRITE
                             corrupt_mode: RANDOM corrupt_max_bytes: 8 methods: "write" })")
                  .empty());
  EXPECT_TRUE(Errors(R"(io { action: ATTR mount: "/d" attr { size: 0 mode: 0400 } })").empty());
  EXPECT_TRUE(Errors(R"(io { action: ENOSPC_AFTER mount: "/d" enospc_after_bytes: 0 })").empty());
}

TEST_F(IoValidateTest, EveryProblemNamesItsField) {
  auto errs = Errors(R"(io { mount: "rel/dir" path: "a[b" methods: "write" methods: "nope"
                             percent: 150 max_count: -1 jitter { seconds: -1 } })");
  EXPECT_TRUE(HasField(errs, "io.action"));
  EXPECT_TRUE(HasField(errs, "io.mount"));
  EXPECT_TRUE(HasField(errs, "io.path"));
  EXPECT_TRUE(HasField(errs, "io.methods[1]"));
  EXPECT_FALSE(HasField(errs, "io.methods[0]"));
  EXPECT_TRUE(HasField(errs, "io.percent"));
  EXPECT_TRUE(HasField(errs, "io.max_count"));
  EXPECT_TRUE(HasField(errs, "io.jitter"));
}

TEST_F(IoValidateTest, ActionSpecificFields) {
  EXPECT_TRUE(HasField(Errors(R"(io { action: LATENCY mount: "/d" })"), "io.delay"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: LATENCY mount: "/d" delay { seconds: 1 }
                                      distribution: NORMAL })"),
                       "io.jitter"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: ERRNO mount: "/d" })"), "io.errnos"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: ERRNO mount: "/d" errnos { name: "EIO" }
                                      errnos { name: "EWHAT" } })"),
                       "io.errnos[1].name"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: SHORT mount: "/d" })"), "io.short_fraction"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: SHORT mount: "/d" short_fraction: 1.5 })"),
                       "io.short_fraction"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: SHORT mount: "/d" short_bytes: 1
                                      methods: "fsync" })"),
                       "io.methods[0]"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: CORRUPT mount: "/d" corrupt_side: READ
                                      methods: "write" })"),
                       "io.methods[0]"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: ATTR mount: "/d" })"), "io.attr"));
  EXPECT_TRUE(
      HasField(Errors(R"(io { action: ATTR mount: "/d" attr { mode: 070000 } })"), "io.attr.mode"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: ERRNO mount: "/d" errnos { name: "EIO" }
                                      delay { seconds: 1 } enospc_after_bytes: 5 })"),
                       "io.delay"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: ERRNO mount: "/d" errnos { name: "EIO" }
                                      enospc_after_bytes: 5 })"),
                       "io.enospc_after_bytes"));
}

TEST_F(IoValidateTest, CreateRefusesWithoutOverlay) {
  v1::FaultSpec spec;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"(io { action: ERRNO mount: "/nonexistent-faultline" errnos { name: "EIO" } })", &spec));
  FaultContext ctx;
  auto f = registry_.Create(spec, ctx);
  EXPECT_THROW(f->Prepare(), FaultError);
  // A fault restored from the journal after its overlay died reverts cleanly.
  auto restored = registry_.Find("io")->Restore(spec, R"({"instance":"gone","rule_id":3})", ctx);
  EXPECT_NO_THROW(restored->Revert());
  EXPECT_NO_THROW(restored->Revert());
}

TEST_F(IoValidateTest, CrashModelSpecsPass) {
  EXPECT_TRUE(Errors(R"(io { action: LOSE_UNSYNCED mount: "/d" path: "**"
                             crash { after { seconds: 10 } restart: "etcd"
                                     max_unsynced_bytes: 1048576 } })")
                  .empty());
  EXPECT_TRUE(Errors(R"(io { action: LOSE_UNSYNCED mount: "/d" path: "member/snap/*.snap.db"
                             crash { names: true } })")
                  .empty());
  EXPECT_TRUE(Errors(R"(io { action: TORN_WRITE mount: "/d" path: "member/snap/db"
                             crash { parts: 4 keep: 0 } })")
                  .empty());
  EXPECT_TRUE(Errors(R"(io { action: TORN_WRITE mount: "/d" crash { tear_at: 100 tear_at: 4096
                                                                  keep: 2 } })")
                  .empty());
  EXPECT_TRUE(Errors(R"(io { action: TORN_SEQUENCE mount: "/d" path: "*.wal" crash { at_op: 2 } })")
                  .empty());
  EXPECT_TRUE(Errors(R"(io { action: CRASH_AT mount: "/d" path: "*.wal" methods: "fdatasync"
                             crash { at_op: 3 after_op: true } })")
                  .empty());
  EXPECT_TRUE(Errors(R"(io { action: SKIP_SYNC mount: "/d" path: "*.wal" percent: 50 })").empty());
  EXPECT_TRUE(Errors(R"(io { action: CRASH mount: "/d" crash { restart: "etcd" } })").empty());
}

TEST_F(IoValidateTest, CrashFieldsOnlyWhereTheyAreRead) {
  // Each crash setting on an action that would ignore it is an error naming the field.
  EXPECT_TRUE(HasField(Errors(R"(io { action: LATENCY mount: "/d" delay { seconds: 1 }
                                      crash { at_op: 2 } })"),
                       "io.crash.at_op"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: TORN_WRITE mount: "/d" crash { after_op: true } })"),
                       "io.crash.after_op"));
  EXPECT_TRUE(
      HasField(Errors(R"(io { action: CRASH_AT mount: "/d" crash { after { seconds: 1 } } })"),
               "io.crash.after"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: ERRNO mount: "/d" errnos { name: "EIO" }
                                      crash { restart: "etcd" } })"),
                       "io.crash.restart"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: TORN_WRITE mount: "/d"
                                      crash { parts: 4 tear_at: 10 } })"),
                       "io.crash.parts"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: TORN_WRITE mount: "/d" crash { parts: 1 } })"),
                       "io.crash.parts"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: TORN_WRITE mount: "/d"
                                      crash { tear_at: 10 tear_at: 5 } })"),
                       "io.crash.tear_at[1]"));
  EXPECT_TRUE(
      HasField(Errors(R"(io { action: TORN_WRITE mount: "/d" crash { parts: 4 keep: 4 } })"),
               "io.crash.keep[0]"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: CRASH_AT mount: "/d" crash { keep: 1 } })"),
                       "io.crash.keep"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: TORN_WRITE mount: "/d" crash { names: true } })"),
                       "io.crash.names"));
  EXPECT_TRUE(
      HasField(Errors(R"(io { action: LOSE_UNSYNCED mount: "/d" percent: 50 })"), "io.percent"));
  EXPECT_TRUE(
      HasField(Errors(R"(io { action: LOSE_UNSYNCED mount: "/d" max_count: 3 })"), "io.max_count"));
  EXPECT_TRUE(
      HasField(Errors(R"(io { action: CRASH mount: "/d" methods: "write" })"), "io.methods"));
  EXPECT_TRUE(HasField(Errors(R"(io { action: SKIP_SYNC mount: "/d" methods: "write" })"),
                       "io.methods[0]"));
  EXPECT_TRUE(
      HasField(Errors(R"(io { action: CRASH_AT mount: "/d" methods: "read" })"), "io.methods[0]"));
}

}  // namespace
}  // namespace faultline::faults::io
