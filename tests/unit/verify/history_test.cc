// History format (JSON lines, EDN export) and the per-client / watch checks.
#include <gtest/gtest.h>

#include <sstream>

#include "controller/verify/history_checks.h"
#include "controller/verify/workload.h"
#include "tests/unit/verify/history_builder.h"

namespace faultline::verify {
namespace {

using testing::HistoryBuilder;

History Sample() {
  HistoryBuilder b;
  b.Put(0, "k\"1", "a", 0, 1, 2);
  b.Get(1, "k\"1", 2, 3, "a", 2, 2).serializable = true;
  b.Cas(0, "k\"1", "a", "b", 4, 5, true, 3);
  b.Cas(1, "k2", std::nullopt, "c", 4, 5, false, 0, Outcome::kUnknown);
  b.Del(2, "k\"1", 6, 7, 1, 4);
  b.Put(2, "k2", "d", 8, 9, 0, Outcome::kFailed).error = "etcdserver: too many requests";
  b.history().watch_events.push_back({"m0", 2, "k\"1", false, "a", 100});
  b.history().watch_events.push_back({"m0", 4, "k\"1", true, "", 200});
  b.history().final_reads.push_back({"k2", false, "", 0});
  return b.history();
}

TEST(HistoryJsonl, RoundTripKeepsEveryField) {
  History h = Sample();
  std::stringstream s;
  SaveJsonl(h, s);
  History back = LoadJsonl(s);
  ASSERT_EQ(back.ops.size(), h.ops.size());
  for (size_t i = 0; i < h.ops.size(); ++i) {
    const Op &a = h.ops[i], &b = back.ops[i];
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.key, b.key);
    EXPECT_EQ(a.value, b.value);
    EXPECT_EQ(a.outcome, b.outcome);
    EXPECT_EQ(a.invoke_ns, b.invoke_ns);
    EXPECT_EQ(a.return_ns, b.return_ns);
    EXPECT_EQ(a.revision, b.revision);
    EXPECT_EQ(a.found, b.found);
    EXPECT_EQ(a.read_value, b.read_value);
    EXPECT_EQ(a.read_mod_revision, b.read_mod_revision);
    EXPECT_EQ(a.succeeded, b.succeeded);
    EXPECT_EQ(a.deleted, b.deleted);
    EXPECT_EQ(a.serializable, b.serializable);
    EXPECT_EQ(a.expect_absent, b.expect_absent);
    EXPECT_EQ(a.expect_value, b.expect_value);
    EXPECT_EQ(a.error, b.error);
  }
  ASSERT_EQ(back.watch_events.size(), 2u);
  EXPECT_TRUE(back.watch_events[1].is_delete);
  ASSERT_EQ(back.final_reads.size(), 1u);
  EXPECT_EQ(back.final_reads[0].key, "k2");
}

TEST(HistoryJsonl, BadInputNamesLineAndField) {
  auto load_error = [](const std::string& text) {
    std::stringstream s(text);
    try {
      LoadJsonl(s);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(load_error("{\"kind\":\"header\",\"format\":\"faultline-history\",\"version\":1}\n"
                       "{\"kind\":\"op\",\"id\":1}\n"),
            "line 2: field \"client\" is missing");
  EXPECT_EQ(load_error("not json\n").substr(0, 16), "line 1: not JSON");
  EXPECT_EQ(load_error("{\"kind\":\"op\",\"id\":1,\"client\":0,\"type\":\"inc\",\"key\":\"k\"}"),
            "line 1: field \"type\": \"inc\" is not one of put, get, cas, delete");
  EXPECT_EQ(load_error("{\"kind\":\"op\",\"id\":\"x\"}"),
            "line 1: field \"id\" has the wrong type (string)");
  EXPECT_EQ(load_error("{\"kind\":\"op\",\"id\":1,\"client\":0,\"type\":\"get\",\"key\":\"k\","
                       "\"invoke_ns\":5,\"return_ns\":4,\"outcome\":\"ok\",\"revision\":1,"
                       "\"found\":false}"),
            "line 1: field \"return_ns\" is before \"invoke_ns\"");
  EXPECT_EQ(load_error("{\"kind\":\"bogus\"}"),
            "line 1: field \"kind\": \"bogus\" is not one of header, op, watch, final, "
            "watch_open, watch_progress, compact, defragment, lease_grant, lease_keepalive, "
            "lease_revoke, list");
}

TEST(HistoryEdn, ExportsInvokeAndCompletionPerOp) {
  std::stringstream s;
  ExportEdn(Sample(), s);
  std::string edn = s.str();
  EXPECT_EQ(std::count(edn.begin(), edn.end(), '\n'), 12);
  EXPECT_NE(edn.find("{:type :invoke, :f :write, :value [\"k\\\"1\" \"a\"], :process 0, :time 0, "
                     ":index 0}"),
            std::string::npos)
      << edn;
  EXPECT_NE(edn.find("{:type :ok, :f :read, :value [\"k\\\"1\" \"a\"]"), std::string::npos);
  EXPECT_NE(edn.find(":type :ok, :f :cas, :value [\"k\\\"1\" [\"a\" \"b\"]]"), std::string::npos);
  EXPECT_NE(edn.find(":type :info, :f :cas, :value [\"k2\" [nil \"c\"]]"), std::string::npos);
  EXPECT_NE(edn.find(":type :fail, :f :write, :value [\"k2\" \"d\"]"), std::string::npos);
  EXPECT_NE(edn.find(":type :ok, :f :write, :value [\"k\\\"1\" nil]"), std::string::npos);
}

TEST(RevisionMonotonic, PassesAndNamesTheClientThatWentBack) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 5);
  b.Get(0, "k", 2, 3, "a", 5, 5);
  b.Get(1, "k", 2, 3, "a", 5, 5);
  EXPECT_TRUE(CheckRevisionMonotonic(b.history()).passed);
  b.Get(0, "x", 4, 5, std::nullopt, 0, 4);
  CheckResult r = CheckRevisionMonotonic(b.history());
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.evidence["examples"][0]["client"], 0);
  EXPECT_EQ(r.evidence["violations"], 1);
}

TEST(RevisionMonotonic, SerializableReadsComparedPerMember) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 5).endpoint = "m0";
  Op& r1 = b.Get(0, "k", 2, 3, std::nullopt, 0, 4);  // a lagging member, read locally: allowed
  r1.serializable = true;
  r1.endpoint = "m1";
  EXPECT_TRUE(CheckRevisionMonotonic(b.history()).passed);
  Op& r2 = b.Get(0, "k", 4, 5, std::nullopt, 0, 3);  // the same member going back: not
  r2.serializable = true;
  r2.endpoint = "m1";
  EXPECT_FALSE(CheckRevisionMonotonic(b.history()).passed);
}

TEST(WatchCheck, OrderedCompleteStreamsPass) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Put(0, "k", "b", 2, 3, 3);
  b.Del(0, "k", 4, 5, 1, 4);
  for (const char* w : {"m0", "m1"}) {
    b.history().watch_events.push_back({w, 2, "k", false, "a", 0});
    b.history().watch_events.push_back({w, 3, "k", false, "b", 0});
    b.history().watch_events.push_back({w, 4, "k", true, "", 0});
  }
  CheckResult r = CheckWatches(b.history());
  EXPECT_TRUE(r.passed) << r.evidence.dump();
}

TEST(WatchCheck, GapDuplicateAndReorderAreEachReported) {
  HistoryBuilder b;
  b.Put(0, "k", "a", 0, 1, 2);
  b.Put(0, "k", "b", 2, 3, 3);
  b.Put(0, "k", "c", 4, 5, 4);
  auto& ev = b.history().watch_events;
  ev.push_back({"gap", 2, "k", false, "a", 0});
  ev.push_back({"gap", 4, "k", false, "c", 0});  // 3 is missing
  ev.push_back({"dup", 2, "k", false, "a", 0});
  ev.push_back({"dup", 3, "k", false, "b", 0});
  ev.push_back({"dup", 3, "k", false, "b", 0});
  ev.push_back({"dup", 4, "k", false, "c", 0});
  ev.push_back({"order", 2, "k", false, "a", 0});
  ev.push_back({"order", 4, "k", false, "c", 0});
  ev.push_back({"order", 3, "k", false, "b", 0});
  CheckResult r = CheckWatches(b.history());
  EXPECT_FALSE(r.passed);
  auto w = r.evidence["watchers"];
  EXPECT_EQ(w["gap"]["missing"], 1);
  EXPECT_EQ(w["gap"]["examples"][0]["revision"], 3);
  EXPECT_EQ(w["dup"]["duplicates"], 1);
  EXPECT_EQ(w["dup"]["missing"], 0);
  EXPECT_EQ(w["order"]["out_of_order"], 1);
  EXPECT_EQ(w["order"]["duplicates"], 0);
}

TEST(LatencyPerSecond, BucketsByReturnSecond) {
  History h;
  for (int i = 0; i < 100; ++i) {
    Op op;
    op.invoke_ns = i * 20'000'000LL;
    op.return_ns = op.invoke_ns + (i + 1) * 1000;
    op.outcome = i % 10 == 0 ? Outcome::kUnknown : Outcome::kOk;
    h.ops.push_back(op);
  }
  auto s = LatencyPerSecond(h);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].ops, 50);
  EXPECT_EQ(s[0].unknown, 5);
  EXPECT_EQ(s[0].ok, 45);
  EXPECT_EQ(s[0].max_us, 50);
}

}  // namespace
}  // namespace faultline::verify
