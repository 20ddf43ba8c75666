// Watch guarantees, leases and past reads on small hand-written histories: for each guarantee
// one history that keeps it and one that breaks it, and the finding names the right event.
#include "controller/verify/watch_checks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "controller/verify/history_checks.h"
#include "controller/verify/traffic_checks.h"
#include "tests/unit/verify/history_builder.h"

namespace faultline::verify {
namespace {

using ::testing::HasSubstr;
using testing::HistoryBuilder;

// One watcher of a hand-made history: streams, responses, events, progress notifications.
class W {
 public:
  W(History& h, std::string name, int64_t start, bool prev_kv = false) : h_(h), name_(name) {
    Open(start, "current", prev_kv);
  }
  // The stream broke; a new one starts at `start`.
  W& Resume(int64_t start) {
    h_.watch_opens.back().end = "error";
    Open(start, "resume", h_.watch_opens.back().prev_kv);
    return *this;
  }
  // One response holding these events.
  W& Resp(std::vector<WatchEvent> events) {
    for (WatchEvent& e : events) {
      e.watcher = name_;
      e.stream = stream_;
      e.response = response_;
      h_.watch_events.push_back(e);
    }
    ++response_;
    return *this;
  }
  W& Progress(int64_t rev) {
    h_.watch_progress.push_back({name_, stream_, response_++, rev, 0});
    return *this;
  }

 private:
  void Open(int64_t start, const std::string& why, bool prev_kv) {
    WatchOpen o;
    o.watcher = name_;
    o.stream = ++stream_;
    o.endpoint = "m0";
    o.key = "/p/";
    o.range_end = "/p0";
    o.start_revision = start;
    o.start = why;
    o.prev_kv = prev_kv;
    h_.watch_opens.push_back(o);
  }
  History& h_;
  std::string name_;
  int stream_ = -1;
  int64_t response_ = 0;
};

WatchEvent Put(int64_t rev, const std::string& key, const std::string& value, int64_t created) {
  WatchEvent e;
  e.revision = rev;
  e.key = key;
  e.value = value;
  e.create_revision = created;
  e.version = 1 + rev - created;
  return e;
}
WatchEvent Del(int64_t rev, const std::string& key) {
  WatchEvent e;
  e.revision = rev;
  e.key = key;
  e.is_delete = true;
  return e;
}
WatchEvent WithPrev(WatchEvent e, const std::string& value, int64_t mod) {
  e.has_prev = true;
  e.prev_value = value;
  e.prev_mod_revision = mod;
  return e;
}

// PUT /p/a=a1 @2 (create), PUT /p/b=b1 @3, PUT /p/a=a2 @4, DELETE /p/a @5: acknowledged writes.
HistoryBuilder Base() {
  HistoryBuilder b;
  b.Put(0, "/p/a", "a1", 0, 1, 2);
  b.Put(1, "/p/b", "b1", 2, 3, 3);
  b.Put(0, "/p/a", "a2", 4, 5, 4);
  b.Del(1, "/p/a", 6, 7, 1, 5);
  return b;
}

// Everything, right: one response per revision, prev_kv and create flags as they were.
void Healthy(History& h, const std::string& name) {
  W(h, name, 2, true)
      .Resp({Put(2, "/p/a", "a1", 2)})
      .Resp({Put(3, "/p/b", "b1", 3)})
      .Progress(3)
      .Resp({WithPrev(Put(4, "/p/a", "a2", 2), "a1", 2)})
      .Resp({WithPrev(Del(5, "/p/a"), "a2", 4)})
      .Progress(5);
}

const CheckResult& Get(const std::vector<CheckResult>& rs, const std::string& name) {
  for (const auto& r : rs) {
    if (r.name == name) return r;
  }
  static CheckResult none{"none"};
  ADD_FAILURE() << "no check " << name;
  return none;
}

// Only `name` fails; its first finding is about `revision` and its message has `text`.
void ExpectOnly(const std::vector<CheckResult>& rs, const std::string& name, int64_t revision,
                const std::string& text) {
  for (const auto& r : rs) {
    if (r.name == name) {
      ASSERT_FALSE(r.passed) << r.name << " passed: " << r.summary;
      ASSERT_FALSE(r.evidence["examples"].empty());
      const auto& f = r.evidence["examples"][0];
      EXPECT_EQ(f["revision"], revision) << f.dump(1);
      EXPECT_EQ(f["watcher"], "w") << f.dump(1);
      EXPECT_EQ(f["member"], "m0") << f.dump(1);
      EXPECT_THAT(f["message"].get<std::string>(), HasSubstr(text)) << f.dump(1);
      EXPECT_THAT(r.summary, HasSubstr(text));
    } else {
      EXPECT_TRUE(r.passed) << r.name << ": " << r.summary << "\n" << r.evidence.dump(1);
    }
  }
}

TEST(WatchGuarantees, AHealthyWatcherKeepsEveryGuarantee) {
  HistoryBuilder b = Base();
  Healthy(b.history(), "w");
  auto rs = CheckWatchGuarantees(b.history());
  ASSERT_EQ(rs.size(), WatchGuaranteeNames().size());
  for (const auto& r : rs) EXPECT_TRUE(r.passed) << r.name << ": " << r.summary;
  EXPECT_EQ(Get(rs, "watch-reliable").evidence["per_watcher"]["w"]["reached"], 5);
}

TEST(WatchGuarantees, NoWatcherIsNothingToCheck) {
  auto rs = CheckWatchGuarantees(Base().history());
  for (const auto& r : rs) {
    EXPECT_FALSE(r.passed) << r.name;
    EXPECT_THAT(r.summary, HasSubstr("nothing to check"));
  }
}

TEST(WatchGuarantees, Ordered) {
  HistoryBuilder b = Base();
  W(b.history(), "w", 2)
      .Resp({Put(2, "/p/a", "a1", 2)})
      .Resp({Put(4, "/p/a", "a2", 2)})
      .Resp({Put(3, "/p/b", "b1", 3)})
      .Resp({Del(5, "/p/a")});
  ExpectOnly(CheckWatchGuarantees(b.history()), "watch-ordered", 3,
             "PUT /p/b=\"b1\" at revision 3 after an event at revision 4");
}

TEST(WatchGuarantees, UniqueAlsoAcrossAResume) {
  HistoryBuilder b = Base();
  // The stream broke after revision 3; the client resumed at 3 instead of 4 and got it again.
  W(b.history(), "w", 2)
      .Resp({Put(2, "/p/a", "a1", 2)})
      .Resp({Put(3, "/p/b", "b1", 3)})
      .Resume(3)
      .Resp({Put(3, "/p/b", "b1", 3)})
      .Resp({Put(4, "/p/a", "a2", 2)})
      .Resp({Del(5, "/p/a")});
  const auto rs = CheckWatchGuarantees(b.history());
  ExpectOnly(rs, "watch-unique", 3, "PUT /p/b=\"b1\" at revision 3 twice");
  // How each stream ended is on record: broken, then stopped at the end of the run.
  EXPECT_EQ(Get(rs, "watch-reliable").evidence["per_watcher"]["w"]["ends"],
            nlohmann::json({{"error", 1}, {"stopped", 1}}));
}

TEST(WatchGuarantees, AtomicKeepsARevisionInOneResponse) {
  // A lease revocation deletes two keys at one revision.
  HistoryBuilder b;
  b.Put(0, "/p/l1", "x", 0, 1, 2).lease = 7;
  b.Put(0, "/p/l2", "y", 2, 3, 3).lease = 7;
  AdminOp revoke;
  revoke.kind = AdminOp::Kind::kLeaseRevoke;
  revoke.lease = 7;
  revoke.revision = 4;
  b.history().admin.push_back(revoke);
  History ok = b.history();
  W(ok, "w", 2)
      .Resp({Put(2, "/p/l1", "x", 2)})
      .Resp({Put(3, "/p/l2", "y", 3)})
      .Resp({Del(4, "/p/l1"), Del(4, "/p/l2")});
  for (const auto& r : CheckWatchGuarantees(ok)) EXPECT_TRUE(r.passed) << r.name << r.summary;
  W(b.history(), "w", 2)
      .Resp({Put(2, "/p/l1", "x", 2)})
      .Resp({Put(3, "/p/l2", "y", 3)})
      .Resp({Del(4, "/p/l1")})
      .Resp({Del(4, "/p/l2")});
  ExpectOnly(CheckWatchGuarantees(b.history()), "watch-atomic", 4,
             "revision 4 was split over responses 2 and 3");
}

TEST(WatchGuarantees, ResumableStartsWhereItWasOpened) {
  HistoryBuilder b = Base();
  W(b.history(), "w", 4)
      .Resp({Put(3, "/p/b", "b1", 3)})
      .Resp({Put(4, "/p/a", "a2", 2)})
      .Resp({Del(5, "/p/a")});
  auto rs = CheckWatchGuarantees(b.history());
  const CheckResult& r = Get(rs, "watch-resumable");
  ASSERT_FALSE(r.passed);
  EXPECT_EQ(r.evidence["examples"][0]["revision"], 3);
  EXPECT_THAT(r.summary, HasSubstr("opened at revision 4 received PUT /p/b=\"b1\" at revision 3"));
  // A progress notification below the start says nothing the watch asked about.
  HistoryBuilder p = Base();
  W(p.history(), "w", 4).Progress(2).Resp({Put(4, "/p/a", "a2", 2)}).Resp({Del(5, "/p/a")});
  ExpectOnly(CheckWatchGuarantees(p.history()), "watch-resumable", 2,
             "opened at revision 4 got a progress notification at revision 2");
  // A first event after the first change due: the start was skipped.
  HistoryBuilder s = Base();
  W(s.history(), "w", 3).Resp({Put(4, "/p/a", "a2", 2)}).Resp({Del(5, "/p/a")});
  rs = CheckWatchGuarantees(s.history());
  EXPECT_FALSE(Get(rs, "watch-resumable").passed);
  EXPECT_THAT(Get(rs, "watch-resumable").summary,
              HasSubstr("skipping PUT /p/b=\"b1\" at revision 3"));
}

TEST(WatchGuarantees, Bookmarkable) {
  HistoryBuilder b = Base();
  W(b.history(), "w", 2)
      .Resp({Put(2, "/p/a", "a1", 2)})
      .Resp({Put(3, "/p/b", "b1", 3)})
      .Progress(4)
      .Resp({Put(4, "/p/a", "a2", 2)})
      .Resp({Del(5, "/p/a")});
  ExpectOnly(CheckWatchGuarantees(b.history()), "watch-bookmarkable", 4,
             "after a progress notification at revision 4");
}

// etcd-io/etcd#18089: put zz0, zz1; delete zz0 at revision C; compact C; a watch from C gets no
// DELETE for zz0.
TEST(WatchGuarantees, ReliableNamesTheDeleteMissingAtACompactRevision) {
  HistoryBuilder b;
  b.Put(0, "/p/zz0", "v0", 0, 1, 2);
  b.Put(0, "/p/zz1", "v1", 2, 3, 3);
  b.Del(0, "/p/zz0", 4, 5, 1, 4);
  b.Put(0, "/p/zz1", "v2", 8, 9, 5);
  AdminOp compact;
  compact.kind = AdminOp::Kind::kCompact;
  compact.revision = 4;
  b.history().admin.push_back(compact);
  History fixed = b.history();
  W(fixed, "w", 4).Resp({Del(4, "/p/zz0")}).Resp({Put(5, "/p/zz1", "v2", 3)}).Progress(5);
  for (const auto& r : CheckWatchGuarantees(fixed)) EXPECT_TRUE(r.passed) << r.name << r.summary;

  W(b.history(), "w", 4).Resp({Put(5, "/p/zz1", "v2", 3)}).Progress(5);
  auto rs = CheckWatchGuarantees(b.history());
  // The first event after the start is missing too: resumable says so, reliable names it.
  const CheckResult& r = Get(rs, "watch-reliable");
  ASSERT_FALSE(r.passed);
  const auto& f = r.evidence["examples"][0];
  EXPECT_EQ(f["revision"], 4);
  EXPECT_EQ(f["events"][0]["type"], "DELETE");
  EXPECT_EQ(f["events"][0]["key"], "/p/zz0");
  EXPECT_THAT(r.summary,
              HasSubstr("missed DELETE /p/zz0 at revision 4 (acknowledged delete, op 2"));
  EXPECT_EQ(r.evidence["per_watcher"]["w"]["missing"], 1);
  EXPECT_TRUE(Get(rs, "watch-ordered").passed);
  EXPECT_TRUE(Get(rs, "watch-prev-kv").passed);
}

TEST(WatchGuarantees, ReliableCatchesAWrongEventAndOneOutsideTheRange) {
  HistoryBuilder b = Base();
  W(b.history(), "w", 2)
      .Resp({Put(2, "/p/a", "a1", 2)})
      .Resp({Put(3, "/p/b", "forged", 3)})
      .Resp({Put(4, "/p/a", "a2", 2)})
      .Resp({Del(5, "/p/a")});
  auto rs = CheckWatchGuarantees(b.history());
  EXPECT_FALSE(Get(rs, "watch-reliable").passed);
  EXPECT_THAT(Get(rs, "watch-reliable").summary,
              HasSubstr("received PUT /p/b=\"forged\" at revision 3 but acknowledged put"));
  HistoryBuilder o = Base();
  o.Put(2, "/q", "elsewhere", 0, 1, 6);
  W(o.history(), "w", 2)
      .Resp({Put(2, "/p/a", "a1", 2)})
      .Resp({Put(3, "/p/b", "b1", 3)})
      .Resp({Put(4, "/p/a", "a2", 2)})
      .Resp({Del(5, "/p/a")})
      .Resp({Put(6, "/q", "elsewhere", 6)});
  ExpectOnly(CheckWatchGuarantees(o.history()), "watch-reliable", 6,
             "outside the range it watches");
}

TEST(WatchGuarantees, PrevKvIsThePreviousState) {
  HistoryBuilder b = Base();
  W(b.history(), "w", 2, true)
      .Resp({Put(2, "/p/a", "a1", 2)})
      .Resp({Put(3, "/p/b", "b1", 3)})
      .Resp({WithPrev(Put(4, "/p/a", "a2", 2), "a0", 2)})
      .Resp({WithPrev(Del(5, "/p/a"), "a2", 4)});
  ExpectOnly(CheckWatchGuarantees(b.history()), "watch-prev-kv", 4,
             "came with prev_kv \"a0\" @2 but the previous state was PUT /p/a=\"a1\" at revision "
             "2");
  // Left out where the key held a value and nothing was compacted: a finding too.
  HistoryBuilder m = Base();
  W(m.history(), "w", 2, true)
      .Resp({Put(2, "/p/a", "a1", 2)})
      .Resp({Put(3, "/p/b", "b1", 3)})
      .Resp({Put(4, "/p/a", "a2", 2)})
      .Resp({WithPrev(Del(5, "/p/a"), "a2", 4)});
  ExpectOnly(CheckWatchGuarantees(m.history()), "watch-prev-kv", 4, "came without prev_kv");
}

TEST(WatchGuarantees, IsCreateMatchesWhetherTheKeyExisted) {
  HistoryBuilder b = Base();
  W(b.history(), "w", 2)
      .Resp({Put(2, "/p/a", "a1", 2)})
      .Resp({Put(3, "/p/b", "b1", 3)})
      .Resp({Put(4, "/p/a", "a2", 4)})  // claims a create: /p/a held a1
      .Resp({Del(5, "/p/a")});
  ExpectOnly(CheckWatchGuarantees(b.history()), "watch-is-create", 4,
             "(a create) but the key held PUT /p/a=\"a1\" at revision 2");
}

TEST(WatchGuarantees, CheckHistoryAddsThemWhereWatchesWereRecorded) {
  auto guarantees = [](const std::vector<CheckResult>& rs) {
    size_t n = 0;
    for (const auto& r : rs) {
      if (r.name.rfind("watch-", 0) != 0) continue;
      ++n;
      EXPECT_TRUE(r.passed) << r.name << ": " << r.summary;
    }
    return n;
  };
  HistoryBuilder b = Base();
  EXPECT_EQ(guarantees(CheckHistory(b.history())), 0u);
  Healthy(b.history(), "w");
  EXPECT_EQ(guarantees(CheckHistory(b.history())), WatchGuaranteeNames().size());
}

TEST(HistoryJsonl, TrafficRecordsRoundTrip) {
  HistoryBuilder b = Base();
  Healthy(b.history(), "w");
  b.history().ops[0].lease = 9;
  Op& cas = b.Cas(2, "/p/c", std::nullopt, "c1", 10, 11, true, 6);
  cas.past_revision = 3;
  cas.past_found = true;
  cas.past_value = "b1";
  cas.past_mod_revision = 3;
  Op& cd = b.Del(2, "/p/c", 12, 13, 0, 7);
  cd.conditional = true;
  cd.expect_mod_revision = 5;
  cd.found = true;
  cd.read_value = "c1";
  cd.read_mod_revision = 6;
  AdminOp a;
  a.kind = AdminOp::Kind::kLeaseKeepAlive;
  a.lease = 9;
  a.ttl = 5;
  a.invoke_ns = 1;
  a.return_ns = 2;
  b.history().admin.push_back(a);
  ListOp l;
  l.id = 99;
  l.key = "/p/";
  l.range_end = "/p0";
  l.revision = 5;
  l.kvs.push_back({"/p/b", "b1", 3});
  b.history().lists.push_back(l);
  std::stringstream s;
  SaveJsonl(b.history(), s);
  History back = LoadJsonl(s);
  ASSERT_EQ(back.watch_opens.size(), 1u);
  EXPECT_EQ(back.watch_opens[0].start_revision, 2);
  EXPECT_TRUE(back.watch_opens[0].prev_kv);
  ASSERT_EQ(back.watch_events.size(), b.history().watch_events.size());
  EXPECT_EQ(back.watch_events[2].prev_value, "a1");
  EXPECT_EQ(back.watch_events[2].create_revision, 2);
  EXPECT_EQ(back.watch_events[3].response, 4);
  ASSERT_EQ(back.watch_progress.size(), 2u);
  EXPECT_EQ(back.watch_progress[1].revision, 5);
  EXPECT_EQ(back.ops[0].lease, 9);
  EXPECT_EQ(back.ops[4].past_value, "b1");
  EXPECT_TRUE(back.ops[5].conditional);
  EXPECT_EQ(back.ops[5].read_mod_revision, 6);
  ASSERT_EQ(back.admin.size(), 1u);
  EXPECT_EQ(back.admin[0].kind, AdminOp::Kind::kLeaseKeepAlive);
  EXPECT_EQ(back.admin[0].ttl, 5);
  ASSERT_EQ(back.lists.size(), 1u);
  EXPECT_EQ(back.lists[0].kvs[0].mod_revision, 3);
  // Every guarantee judges the reloaded history as it judged the recorded one.
  auto before = CheckWatchGuarantees(b.history()), after = CheckWatchGuarantees(back);
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(before[i].passed, after[i].passed);
  std::stringstream bad("{\"kind\":\"watch_open\",\"watcher\":\"w\",\"stream\":0}\n");
  EXPECT_THROW(
      {
        try {
          LoadJsonl(bad);
        } catch (const std::runtime_error& e) {
          EXPECT_THAT(e.what(), HasSubstr("line 1: field \"key\" is missing"));
          throw;
        }
      },
      std::runtime_error);
}

// Leases: one lease granted with TTL 10s at t=0, its key put, read while it lives and after its
// revocation.
struct LeaseHistory {
  HistoryBuilder b;
  explicit LeaseHistory(bool found_after_revoke, bool found_while_alive) {
    AdminOp grant;
    grant.kind = AdminOp::Kind::kLeaseGrant;
    grant.lease = 7;
    grant.ttl = 10;
    grant.invoke_ns = 0;
    grant.return_ns = 1000;
    b.history().admin.push_back(grant);
    b.Put(0, "/p/l", "x", 2, 3, 2).lease = 7;
    b.Get(0, "/p/l", 4, 5, found_while_alive ? std::optional<std::string>("x") : std::nullopt, 2, 2)
        .lease = 7;
    AdminOp revoke;
    revoke.kind = AdminOp::Kind::kLeaseRevoke;
    revoke.lease = 7;
    revoke.revision = 3;
    revoke.invoke_ns = 6000;
    revoke.return_ns = 7000;
    b.history().admin.push_back(revoke);
    b.Get(0, "/p/l", 8, 9, found_after_revoke ? std::optional<std::string>("x") : std::nullopt, 2,
          3)
        .lease = 7;
  }
};

TEST(Leases, NoKeyOutlivesItsRevocationNorVanishesWhileItLives) {
  CheckResult ok = CheckLeases(LeaseHistory(false, true).b.history());
  EXPECT_TRUE(ok.passed) << ok.summary << ok.evidence.dump(1);
  EXPECT_EQ(ok.evidence["reads_checked"], 2);
  CheckResult outlived = CheckLeases(LeaseHistory(true, true).b.history());
  EXPECT_FALSE(outlived.passed);
  EXPECT_THAT(outlived.summary, HasSubstr("key /p/l was still there (read op 2 at revision 3) "
                                          "after lease 7 was revoked at revision 3"));
  CheckResult vanished = CheckLeases(LeaseHistory(false, false).b.history());
  EXPECT_FALSE(vanished.passed);
  EXPECT_THAT(vanished.summary, HasSubstr("key /p/l was gone (read op 1 at revision 2)"));
  EXPECT_FALSE(CheckLeases(Base().history()).passed) << "no lease traffic: nothing to check";
  // Lease keys vanish with their lease: linearizability and lost-writes leave them to this check.
  LeaseHistory both(false, true);
  both.b.Put(1, "/p/other", "o", 10, 11, 4);
  both.b.Get(1, "/p/other", 12, 13, "o", 4, 4);
  for (const auto& r : CheckHistory(both.b.history())) {
    if (r.name == "linearizability" || r.name == "lost-writes" || r.name == "leases") {
      EXPECT_TRUE(r.passed) << r.name << ": " << r.summary;
    }
  }
}

// A lease left to expire (the `expire` traffic): granted with TTL 10 s at 0, no keep-alive, no
// revocation; its key read at `read_s`. Two TTLs plus 5 s after the grant's answer (a new leader
// restarts every TTL) the key must be gone.
HistoryBuilder ExpiringLease(int64_t read_s, bool found) {
  HistoryBuilder b;
  AdminOp grant;
  grant.kind = AdminOp::Kind::kLeaseGrant;
  grant.lease = 9;
  grant.ttl = 10;
  grant.invoke_ns = 0;
  grant.return_ns = 1'000'000;
  b.history().admin.push_back(grant);
  b.Put(0, "/p/e", "x", 2000, 3000, 2).lease = 9;
  b.Get(0, "/p/e", read_s * 1'000'000, read_s * 1'000'000 + 1000,
        found ? std::optional<std::string>("x") : std::nullopt, 2, 2)
      .lease = 9;
  return b;
}

TEST(Leases, NoKeyOutlivesItsTtlByMoreThanOneMoreTtlAndTheSlack) {
  // Still there a little after its TTL (etcd's expiry is not exact, a leader change restarts it).
  EXPECT_TRUE(CheckLeases(ExpiringLease(12, true).history()).passed);
  EXPECT_TRUE(CheckLeases(ExpiringLease(24, true).history()).passed);
  // Gone after its TTL: fine; gone before it: vanished.
  EXPECT_TRUE(CheckLeases(ExpiringLease(11, false).history()).passed);
  EXPECT_FALSE(CheckLeases(ExpiringLease(8, false).history()).passed);
  // Still there 30 s after the grant (the leader's clock stepped back: etcd#12291).
  CheckResult late = CheckLeases(ExpiringLease(30, true).history());
  EXPECT_FALSE(late.passed);
  EXPECT_THAT(late.summary, HasSubstr("key /p/e was still there (read op 1 at revision 2) 19999 ms "
                                      "after its lease 9's 10 s TTL ran out"));
  EXPECT_EQ(late.evidence["expired_late"], 1);
  // A revocation sent before the read leaves it to the revocation rule.
  HistoryBuilder revoked = ExpiringLease(30, false);
  AdminOp rv;
  rv.kind = AdminOp::Kind::kLeaseRevoke;
  rv.lease = 9;
  rv.invoke_ns = 20'000'000'000;
  rv.return_ns = 20'001'000'000;
  revoked.history().admin.push_back(rv);
  EXPECT_TRUE(CheckLeases(revoked.history()).passed);
}

TEST(PastReads, AReadAtAPastRevisionSeesThatRevision) {
  auto with_read = [](bool found, const std::string& value, int64_t mod) {
    HistoryBuilder b = Base();
    Op& cas = b.Cas(2, "/p/a", std::nullopt, "a3", 10, 11, true, 6);
    cas.past_revision = 4;
    cas.past_found = found;
    cas.past_value = value;
    cas.past_mod_revision = mod;
    return b;
  };
  CheckResult ok = CheckPastReads(with_read(true, "a2", 4).history());
  EXPECT_TRUE(ok.passed) << ok.summary;
  CheckResult stale = CheckPastReads(with_read(true, "a1", 2).history());
  EXPECT_FALSE(stale.passed);
  EXPECT_THAT(stale.summary, HasSubstr("/p/a at revision 4 returned \"a1\" @2, stale: the key "
                                       "changed later, PUT /p/a=\"a2\" at revision 4"));
  CheckResult absent = CheckPastReads(with_read(false, "", 0).history());
  EXPECT_FALSE(absent.passed);
  EXPECT_THAT(absent.summary, HasSubstr("found nothing, but the key held PUT /p/a=\"a2\""));
  // A list at revision 4 must show /p/a=a2 and /p/b=b1.
  HistoryBuilder l = Base();
  ListOp list;
  list.id = 50;
  list.key = "/p/";
  list.range_end = "/p0";
  list.revision = 4;
  list.kvs.push_back({"/p/a", "a2", 4});
  l.history().lists.push_back(list);
  CheckResult missing = CheckPastReads(l.history());
  EXPECT_FALSE(missing.passed);
  EXPECT_THAT(missing.summary, HasSubstr("list 50"));
  EXPECT_THAT(missing.summary, HasSubstr("/p/b at revision 4 found nothing"));
  l.history().lists[0].kvs.push_back({"/p/b", "b1", 3});
  EXPECT_TRUE(CheckPastReads(l.history()).passed);
}

}  // namespace
}  // namespace faultline::verify
