// A real etcd member (Debian's etcd-server) with its data dir on a faultline overlay, checked
// with independent clients: etcdctl for the data, curl for etcd's own /metrics.
#include <fcntl.h>
#include <gtest/gtest.h>

#include "etcd_fixture.h"
#include "faults/io/overlay.h"
#include "io_test_util.h"

namespace faultline::faults::io {
namespace {

using namespace std::chrono_literals;

class EtcdOnOverlayTest : public EtcdOnOverlayFixture {
 protected:
  EtcdOnOverlayTest() : EtcdOnOverlayFixture("etcd") {}

  // Sum and count of etcd_disk_wal_fsync_duration_seconds from etcd's /metrics.
  std::pair<double, double> WalFsyncMetric() {
    std::string text = io_test::Run("curl -s " + client_ + "/metrics");
    auto value = [&](const std::string& name) {
      size_t at = text.find("\n" + name + " ");
      return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size() + 2));
    };
    return {value("etcd_disk_wal_fsync_duration_seconds_sum"),
            value("etcd_disk_wal_fsync_duration_seconds_count")};
  }
  std::shared_ptr<Rule> Arm(RuleKind kind, const std::string& glob, MethodMask methods,
                            const std::function<void(RuleSpec&)>& more) {
    RuleSpec s;
    s.kind = kind;
    s.path_glob = glob;
    s.methods = methods;
    more(s);
    return overlay_->Arm(s);
  }
};

TEST_F(EtcdOnOverlayTest, StartsServesAndSurvivesRestart) {
  StartEtcd();
  for (int i = 0; i < 20; ++i) {
    ASSERT_NE(Ctl("put k" + std::to_string(i) + " v" + std::to_string(i)).find("OK"),
              std::string::npos);
  }
  EXPECT_EQ(Ctl("get k7 --print-value-only"), "v7\n");
  ASSERT_GE(etcd_->Stop(SIGTERM), 0);
  StartEtcd();
  EXPECT_EQ(Ctl("get k19 --print-value-only"), "v19\n");
  std::string keys = Ctl("get k --prefix --keys-only");
  EXPECT_EQ(std::count(keys.begin(), keys.end(), 'k'), 20) << keys;
  ASSERT_GE(etcd_->Stop(SIGTERM), 0);
  // The data is in the real directory, not in the overlay.
  overlay_.reset();
  bool wal = false;
  for (auto& e : std::filesystem::directory_iterator(data_ / "member" / "wal")) {
    wal |= e.path().extension() == ".wal";
  }
  EXPECT_TRUE(wal);
  EXPECT_TRUE(std::filesystem::exists(data_ / "member" / "snap" / "db"));
}

TEST_F(EtcdOnOverlayTest, WalFdatasyncLatencyShowsInEtcdMetrics) {
  StartEtcd();
  ASSERT_NE(Ctl("put warm up").find("OK"), std::string::npos);
  auto [sum0, count0] = WalFsyncMetric();
  ASSERT_GE(count0, 0) << "no etcd_disk_wal_fsync_duration_seconds in /metrics";
  auto rule = Arm(RuleKind::kLatency, "*.wal", Bit(Method::kFdatasync),
                  [](RuleSpec& s) { s.delay = 80ms; });
  for (int i = 0; i < 10; ++i)
    ASSERT_NE(Ctl("put slow" + std::to_string(i) + " v").find("OK"), std::string::npos);
  auto [sum1, count1] = WalFsyncMetric();
  double n = count1 - count0;
  ASSERT_GE(n, 10);
  double mean = (sum1 - sum0) / n;
  EXPECT_GE(mean, 0.080) << "etcd's own WAL fsync mean over " << n << " syncs";
  EXPECT_LT(mean, 0.300);
  EXPECT_GE(rule->acted(), 10);
  RecordProperty("wal_fsync_mean_ms_with_80ms_rule", std::to_string(mean * 1000));

  overlay_->Disarm(rule->id());
  for (int i = 0; i < 10; ++i)
    ASSERT_NE(Ctl("put fast" + std::to_string(i) + " v").find("OK"), std::string::npos);
  auto [sum2, count2] = WalFsyncMetric();
  double fast_mean = (sum2 - sum1) / (count2 - count1);
  EXPECT_LT(fast_mean, 0.080);
  RecordProperty("wal_fsync_mean_ms_after_recover", std::to_string(fast_mean * 1000));
}

// etcd treats a failed WAL write as fatal: the member stops rather than acknowledge a write it
// could not persist. After the fault is recovered, a restart finds every acknowledged key.
TEST_F(EtcdOnOverlayTest, EioOnWalWriteStopsTheMemberWithoutLosingAcknowledgedWrites) {
  StartEtcd();
  for (int i = 0; i < 5; ++i)
    ASSERT_NE(Ctl("put acked" + std::to_string(i) + " v").find("OK"), std::string::npos);
  auto rule = Arm(RuleKind::kErrno, "*.wal", Bit(Method::kWrite), [](RuleSpec& s) {
    s.errnos = {{EIO, 1}};
  });
  std::string put = Ctl("put doomed v", "2s");
  EXPECT_EQ(put.find("OK"), std::string::npos) << put;
  EXPECT_TRUE(io_test::WaitFor([&] { return !etcd_->Running(); }, 15s))
      << "etcd kept running with a failing WAL";
  std::string log = io_test::Slurp(log_);
  size_t at = log.find("input/output error");
  ASSERT_NE(at, std::string::npos) << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
  size_t begin = log.rfind('\n', at);
  begin = begin == std::string::npos ? 0 : begin + 1;
  std::string line = log.substr(begin, log.find('\n', at) - begin);
  RecordProperty("etcd_reaction", line);
  std::cerr << "etcd on EIO from WAL write: " << line << "\n";
  EXPECT_GE(rule->acted(), 1);

  overlay_->Disarm(rule->id());
  StartEtcd();
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(Ctl("get acked" + std::to_string(i) + " --print-value-only"), "v\n");
}

}  // namespace
}  // namespace faultline::faults::io
