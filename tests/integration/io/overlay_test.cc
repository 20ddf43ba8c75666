// Every check here is made from outside the overlay: the test is an ordinary process doing
// syscalls on the mounted directory (timing its own fsync, reading errno and bytes), and reads
// the real files underneath through a directory fd opened before the mount.
#include "faults/io/overlay.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <thread>

#include "faults/core/registry.h"
#include "faults/io/io_faults.h"
#include "faults/io/overlay_process.h"
#include "io_test_util.h"
#include "tests/support/thread_sched.h"

namespace faultline::faults::io {
namespace {

using io_test::Millis;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

class OverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<io_test::TempDir>("ov");
    dir_ = tmp_->path() / "data";
    std::filesystem::create_directory(dir_);
    under_ = ::open(dir_.c_str(), O_PATH | O_DIRECTORY);
    ASSERT_GE(under_, 0);
  }
  void TearDown() override {
    overlay_.reset();
    // Overlay processes a failed test left behind: attach and end them, as an agent would.
    if (std::filesystem::exists(tmp_->path() / "sockets")) {
      auto m = Manager();
      m->Attach();
      m->UnmountAll();
    }
    ::close(under_);
    SweepStaleMounts({}, tmp_->path().string());  // only if a test crashed a helper
    tmp_.reset();
  }
  void Mount(Overlay::Options o = {}) { overlay_ = std::make_unique<Overlay>(dir_, o); }
  std::string P(const std::string& rel) const { return (dir_ / rel).string(); }

  // Contents of the real file underneath, bypassing the overlay.
  std::string ReadUnder(const std::string& rel) { return io_test::ReadAll(under_, rel); }

  void Write(const std::string& rel, const std::string& data) {
    int fd = ::open(P(rel).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0) << rel << ": " << strerror(errno);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  std::string Read(const std::string& rel) { return io_test::ReadAll(AT_FDCWD, P(rel)); }

  double TimedFsync(int fd, bool datasync = false) {
    auto t0 = Clock::now();
    EXPECT_EQ(datasync ? ::fdatasync(fd) : ::fsync(fd), 0) << strerror(errno);
    return Millis(Clock::now() - t0);
  }
  std::shared_ptr<Rule> Arm(RuleKind kind, const std::string& glob, MethodMask methods,
                            const std::function<void(RuleSpec&)>& more = {}) {
    RuleSpec s;
    s.kind = kind;
    s.path_glob = glob;
    s.methods = methods;
    s.seed = 7;
    if (more) more(s);
    return overlay_->Arm(s);
  }

  // A manager as the agent has one: overlay processes serve sockets in the test's directory.
  std::unique_ptr<OverlayManager> Manager() {
    return std::make_unique<OverlayManager>(
        tmp_->path() / "sockets", std::string(FAULTLINE_BINARY_DIR) + "/agent/faultline-overlay");
  }

  std::unique_ptr<io_test::TempDir> tmp_;
  std::filesystem::path dir_;
  int under_ = -1;
  std::unique_ptr<Overlay> overlay_;
};

TEST_F(OverlayTest, MountIsVisibleAndUnmountRestoresDirectory) {
  Write("before", "x");  // not yet mounted: goes to the real dir
  Mount();
  bool found = false;
  for (auto& m : FaultlineMounts()) found |= m.mount_point == dir_.string();
  EXPECT_TRUE(found);
  EXPECT_EQ(Read("before"), "x");
  Write("during", "y");
  overlay_.reset();
  for (auto& m : FaultlineMounts()) EXPECT_NE(m.mount_point, dir_.string());
  EXPECT_EQ(Read("during"), "y");
}

TEST_F(OverlayTest, PassthroughOperations) {
  Mount();
  ASSERT_EQ(::mkdir(P("sub").c_str(), 0755), 0);
  int fd = ::open(P("sub/a").c_str(), O_RDWR | O_CREAT | O_EXCL, 0640);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(::write(fd, "hello", 5), 5);
  ASSERT_EQ(::fsync(fd), 0);
  ASSERT_EQ(::fdatasync(fd), 0);
  char buf[16] = {};
  ASSERT_EQ(::pread(fd, buf, sizeof(buf), 1), 4);
  EXPECT_STREQ(buf, "ello");
  struct stat st;
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 5);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  // fallocate grows the file; ftruncate shrinks it back.
  ASSERT_EQ(::fallocate(fd, 0, 0, 1 << 20), 0) << strerror(errno);
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 1 << 20);
  ASSERT_EQ(::ftruncate(fd, 5), 0);
  ::close(fd);
  EXPECT_EQ(ReadUnder("sub/a"), "hello");

  // chmod / utimens / truncate by path.
  ASSERT_EQ(::chmod(P("sub/a").c_str(), 0600), 0);
  struct timespec ts[2] = {{1000000000, 0}, {1200000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, P("sub/a").c_str(), ts, 0), 0);
  ASSERT_EQ(::stat(P("sub/a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1200000000);
  ASSERT_EQ(::truncate(P("sub/a").c_str(), 4), 0);
  EXPECT_EQ(Read("sub/a"), "hell");

  // rename, RENAME_NOREPLACE, RENAME_EXCHANGE.
  Write("sub/other", "o");
  ASSERT_EQ(::rename(P("sub/a").c_str(), P("sub/b").c_str()), 0);
  EXPECT_EQ(
      ::renameat2(AT_FDCWD, P("sub/b").c_str(), AT_FDCWD, P("sub/other").c_str(), RENAME_NOREPLACE),
      -1);
  EXPECT_EQ(errno, EEXIST);
  ASSERT_EQ(
      ::renameat2(AT_FDCWD, P("sub/b").c_str(), AT_FDCWD, P("sub/other").c_str(), RENAME_EXCHANGE),
      0);
  EXPECT_EQ(Read("sub/b"), "o");
  EXPECT_EQ(Read("sub/other"), "hell");

  // hard link, symlink, readlink.
  ASSERT_EQ(::link(P("sub/other").c_str(), P("sub/hard").c_str()), 0);
  ASSERT_EQ(::stat(P("sub/hard").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
  ASSERT_EQ(::symlink("other", P("sub/sym").c_str()), 0);
  char target[64] = {};
  ASSERT_EQ(::readlink(P("sub/sym").c_str(), target, sizeof(target)), 5);
  EXPECT_STREQ(target, "other");
  EXPECT_EQ(Read("sub/sym"), "hell");

  // readdir sees every entry, with types.
  std::set<std::string> names;
  for (auto& e : std::filesystem::directory_iterator(dir_ / "sub")) {
    names.insert(e.path().filename().string());
    if (e.path().filename() == "sym") {
      EXPECT_TRUE(e.is_symlink());
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"b", "other", "hard", "sym"}));

  // statfs reports the real filesystem.
  struct statvfs sv;
  ASSERT_EQ(::statvfs(dir_.c_str(), &sv), 0);
  EXPECT_GT(sv.f_blocks, 0u);

  // fsyncdir.
  int dfd = ::open(P("sub").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dfd, 0);
  EXPECT_EQ(::fsync(dfd), 0);
  ::close(dfd);

  // unlink / rmdir semantics.
  EXPECT_EQ(::rmdir(P("sub").c_str()), -1);
  EXPECT_EQ(errno, ENOTEMPTY);
  for (auto n : {"b", "other", "hard", "sym"})
    ASSERT_EQ(::unlink(P(std::string("sub/") + n).c_str()), 0);
  EXPECT_EQ(::rmdir(P("sub").c_str()), 0);
  EXPECT_EQ(ReadUnder("sub/b"), "<No such file or directory>");
}

TEST_F(OverlayTest, Xattrs) {
  Overlay::Options o;
  o.xattr = true;
  Mount(o);
  Write("x", "data");
  ASSERT_EQ(::setxattr(P("x").c_str(), "user.faultline", "v1", 2, 0), 0) << strerror(errno);
  char buf[64] = {};
  EXPECT_EQ(::getxattr(P("x").c_str(), "user.faultline", buf, sizeof(buf)), 2);
  EXPECT_STREQ(buf, "v1");
  EXPECT_EQ(::getxattr(P("x").c_str(), "user.faultline", nullptr, 0), 2);
  char list[256] = {};
  ssize_t n = ::listxattr(P("x").c_str(), list, sizeof(list));
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(list, static_cast<size_t>(n)).find("user.faultline"), std::string::npos);
  ASSERT_EQ(::removexattr(P("x").c_str(), "user.faultline"), 0);
  EXPECT_EQ(::getxattr(P("x").c_str(), "user.faultline", buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, ENODATA);
  EXPECT_EQ(::getxattr(P("x").c_str(), "security.capability", buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, ENODATA);
}

// Without xattrs (the default) the kernel learns at the first call that the overlay has none and
// answers every later xattr call itself; writes then cost no GETXATTR round trip.
TEST_F(OverlayTest, XattrsOffByDefaultAndTheKernelStopsAsking) {
  Mount();
  Write("x", "data");
  char buf[64] = {};
  EXPECT_EQ(::getxattr(P("x").c_str(), "user.faultline", buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  EXPECT_EQ(::setxattr(P("x").c_str(), "user.faultline", "v1", 2, 0), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  // A rule on getxattr never sees a call: the kernel no longer sends any, not even the
  // security.capability check before each buffered write.
  auto rule = Arm(RuleKind::kLatency, "**", Bit(Method::kGetxattr),
                  [](RuleSpec& s) { s.delay = std::chrono::milliseconds(50); });
  int fd = ::open(P("x").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(::pwrite(fd, "abcd", 4, 0), 4);
  ::close(fd);
  EXPECT_EQ(::getxattr(P("x").c_str(), "user.faultline", buf, sizeof(buf)), -1);
  EXPECT_EQ(rule->matched(), 0);
}

TEST_F(OverlayTest, FlockAndPosixLocks) {
  Mount();
  Write("lock", "l");
  int a = ::open(P("lock").c_str(), O_RDWR);
  int b = ::open(P("lock").c_str(), O_RDWR);
  ASSERT_EQ(::flock(a, LOCK_EX | LOCK_NB), 0);
  EXPECT_EQ(::flock(b, LOCK_EX | LOCK_NB), -1);
  EXPECT_EQ(errno, EWOULDBLOCK);
  ASSERT_EQ(::flock(a, LOCK_UN), 0);
  EXPECT_EQ(::flock(b, LOCK_EX | LOCK_NB), 0);
  ::close(b);

  // POSIX locks are per process: a child must see the parent's lock.
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  ASSERT_EQ(::fcntl(a, F_SETLK, &fl), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    int c = ::open(P("lock").c_str(), O_RDWR);
    struct flock f2 {};
    f2.l_type = F_WRLCK;
    f2.l_whence = SEEK_SET;
    int r = ::fcntl(c, F_SETLK, &f2);
    ::_exit(r == -1 && (errno == EAGAIN || errno == EACCES) ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child got the lock";
  ::close(a);
}

// bbolt (etcd's database) writes pages with pwrite and reads them through a shared mmap.
TEST_F(OverlayTest, MmapSeesDataWrittenWithWrite) {
  Mount();
  int w = ::open(P("db").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(w, 0);
  std::string page(4096 * 16, 'a');
  ASSERT_EQ(::pwrite(w, page.data(), page.size(), 0), static_cast<ssize_t>(page.size()));
  ASSERT_EQ(::fdatasync(w), 0);
  int r = ::open(P("db").c_str(), O_RDONLY);
  void* m = ::mmap(nullptr, page.size(), PROT_READ, MAP_SHARED, r, 0);
  ASSERT_NE(m, MAP_FAILED) << strerror(errno);
  EXPECT_EQ(std::string(static_cast<char*>(m), page.size()), page);
  // A later write through write() must show in the existing mapping.
  ASSERT_EQ(::pwrite(w, "ZZZZ", 4, 4096 * 3), 4);
  EXPECT_EQ(std::string(static_cast<char*>(m) + 4096 * 3, 4), "ZZZZ");
  ::munmap(m, page.size());
  ::close(r);
  ::close(w);
}

TEST_F(OverlayTest, LatencyOnFsyncIsMeasuredByTheCaller) {
  Mount();
  int slow = ::open(P("member.wal").c_str(), O_RDWR | O_CREAT, 0600);
  int fast = ::open(P("other").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_EQ(::write(slow, "x", 1), 1);
  ASSERT_EQ(::write(fast, "x", 1), 1);
  auto rule = Arm(RuleKind::kLatency, "*.wal", Bit(Method::kFdatasync),
                  [](RuleSpec& s) { s.delay = 200ms; });
  for (int i = 0; i < 3; ++i) {
    double ms = TimedFsync(slow, /*datasync=*/true);
    EXPECT_GE(ms, 200.0);
    EXPECT_LT(ms, 450.0);  // not much more: the held reply is released on time
  }
  EXPECT_LT(TimedFsync(slow, false), 150.0);  // fsync is not fdatasync
  EXPECT_LT(TimedFsync(fast, true), 150.0);   // other paths are not delayed
  EXPECT_EQ(rule->acted(), 3);
  // Recover: normal at once.
  ASSERT_TRUE(overlay_->Disarm(rule->id()));
  EXPECT_LT(TimedFsync(slow, true), 150.0);
  EXPECT_FALSE(overlay_->Disarm(rule->id()));
  ::close(slow);
  ::close(fast);
}

// The thread that sends delayed replies runs SCHED_FIFO, as /proc shows it from outside, so
// host load (builds, faultline's own CPU stress) does not decide when a delay ends.
TEST_F(OverlayTest, ReleaseThreadIsRealtimeSeenFromProc) {
  Mount();
  auto threads = testing::ThreadsNamed(::getpid(), "fl-io-release");
  ASSERT_EQ(threads.size(), 1u);
  EXPECT_EQ(threads[0].policy, SCHED_FIFO);
  EXPECT_EQ(threads[0].rt_priority, sys::kReleasePriority);
  EXPECT_EQ(::sched_getscheduler(threads[0].tid), SCHED_FIFO);
  EXPECT_TRUE(overlay_->ReleaseScheduling().realtime);
  EXPECT_NE(overlay_->ReleaseScheduling().detail.find("SCHED_FIFO 10"), std::string::npos)
      << overlay_->ReleaseScheduling().detail;
}

// FUSE workers' policy as /proc shows it, per mode. A delayed request waits for a worker before
// its delay starts, so in the default mode the workers are SCHED_FIFO (below the release thread)
// exactly while a rule that delays replies is armed; `ordinary` never, `realtime` always.
TEST_F(OverlayTest, FuseWorkersRealtimeWhileADelayRuleIsArmed) {
  auto policies = [&] {
    std::set<int> out;
    for (const auto& w : testing::ThreadsNamed(::getpid(), overlay_->worker_thread_name())) {
      out.insert(w.policy == SCHED_FIFO ? w.rt_priority : -1);
    }
    return out;
  };
  const std::set<int> ordinary = {-1}, realtime = {sys::kReleasePriority / 2};
  Mount();          // default: while-delaying
  Write("a", "x");  // the workers libfuse started have served
  ASSERT_FALSE(policies().empty());
  EXPECT_EQ(policies(), ordinary);
  EXPECT_FALSE(overlay_->WorkerScheduling().realtime);
  auto errno_rule = Arm(RuleKind::kErrno, "nothing-matches", Bit(Method::kRead));
  EXPECT_EQ(policies(), ordinary) << "an errno rule delays nothing";
  auto delay = [](RuleSpec& r) { r.delay = std::chrono::milliseconds(5); };
  auto rule = Arm(RuleKind::kLatency, "nothing-matches", Bit(Method::kFsync), delay);
  EXPECT_EQ(policies(), realtime);
  EXPECT_TRUE(overlay_->WorkerScheduling().realtime) << overlay_->WorkerScheduling().detail;
  // Workers that serve while it is armed are on it too.
  for (int i = 0; i < 20; ++i) Write("b" + std::to_string(i), "y");
  EXPECT_EQ(policies(), realtime);
  ASSERT_TRUE(overlay_->Disarm(rule->id()));
  EXPECT_EQ(policies(), ordinary);
  EXPECT_NE(overlay_->WorkerScheduling().detail.find("while-delaying"), std::string::npos);
  overlay_->Disarm(errno_rule->id());

  overlay_.reset();
  Overlay::Options o;
  o.workers = Overlay::Options::Workers::kOrdinary;
  Mount(o);
  rule = Arm(RuleKind::kLatency, "nothing-matches", Bit(Method::kFsync), delay);
  Write("c", "z");
  EXPECT_EQ(policies(), ordinary);

  overlay_.reset();
  o.workers = Overlay::Options::Workers::kRealtime;
  Mount(o);
  Write("d", "w");
  EXPECT_EQ(Read("d"), "w");
  EXPECT_EQ(policies(), realtime);
}

// The fault's own accuracy counters against a caller timing its fdatasync: a reply cannot go
// out later than the caller saw it come back, so for every op the fault's lateness is at most
// the caller's time beyond the delay, and so are its percentiles (within the counters' 1/32
// bucket resolution). Exposed through the fault family as `faultline status` shows it.
TEST_F(OverlayTest, DelayAccuracyCountersAgreeWithTheCaller) {
  auto owned = Manager();  // the overlay is served by its own process, as in the agent
  OverlayManager& manager = *owned;
  Registry registry;
  RegisterIoFaults(registry, manager);
  auto ov = manager.Mount(dir_);
  v1::FaultSpec spec;
  spec.set_seed(1);
  auto* io = spec.mutable_io();
  io->set_action(v1::IoFault::LATENCY);
  io->set_mount(dir_.string());
  io->set_path("*.wal");
  io->add_methods("fdatasync");
  io->mutable_delay()->set_nanos(10'000'000);
  FaultContext ctx;
  auto fault = registry.Create(spec, ctx);
  fault->Prepare();
  fault->Apply();
  int fd = ::open(P("x.wal").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  constexpr int kOps = 60;
  std::vector<double> excess;
  for (int i = 0; i < kOps; ++i) {
    ASSERT_EQ(::pwrite(fd, "a", 1, 0), 1);
    double ms = TimedFsync(fd, /*datasync=*/true);
    EXPECT_GE(ms, 10.0);
    excess.push_back(ms - 10.0);
  }
  ::close(fd);
  std::sort(excess.begin(), excess.end());
  auto c = fault->Observe();
  EXPECT_EQ(c["late_samples"], kOps);
  EXPECT_EQ(c["release_realtime"], 1);
  // The overlay process put its FUSE workers on SCHED_FIFO while this latency rule is armed.
  EXPECT_EQ(c["workers_realtime"], 1);
  const double p50 = excess[kOps / 2 - 1], p99 = excess[kOps - 1], max = excess.back();
  const double slack_ms = 0.05;
  EXPECT_LE(c["late_p50_us"] / 1000.0, p50 * 1.04 + slack_ms) << "caller p50 excess " << p50;
  EXPECT_LE(c["late_p99_us"] / 1000.0, p99 * 1.04 + slack_ms) << "caller p99 excess " << p99;
  EXPECT_LE(c["late_max_us"] / 1000.0, max + slack_ms) << "caller max excess " << max;
  EXPECT_LE(c["late_p50_us"], c["late_p99_us"]);
  EXPECT_LE(c["late_p99_us"], c["late_max_us"]);
  std::printf(
      "caller excess p50 %.3f p99 %.3f max %.3f ms; fault late p50 %.3f p99 %.3f max %.3f\n", p50,
      p99, max, c["late_p50_us"] / 1000.0, c["late_p99_us"] / 1000.0, c["late_max_us"] / 1000.0);
  const std::string d = fault->Describe();
  EXPECT_NE(d.find(std::to_string(kOps) + " released, late p50 "), std::string::npos) << d;
  EXPECT_NE(d.find("FUSE workers SCHED_FIFO 5 (while-delaying"), std::string::npos) << d;
  EXPECT_NE(d.find("release thread SCHED_FIFO 10"), std::string::npos) << d;
  EXPECT_EQ(DescribeLatenessCounters(c).rfind("delay accuracy: " + std::to_string(kOps), 0), 0u)
      << DescribeLatenessCounters(c);
  fault->Revert();
}

std::string HelperBinary();

// The counters see a release that really was late: the overlay's process is stopped while a
// reply is held, so the reply goes out long after its deadline, and the fault says so.
TEST_F(OverlayTest, LatenessCountersSeeAReleaseHeldUp) {
  std::string log = (tmp_->path() / "helper.log").string();
  io_test::Child helper({HelperBinary(), dir_.string(), "300"}, log);
  ASSERT_TRUE(
      io_test::WaitFor([&] { return io_test::Slurp(log).find("ready") != std::string::npos; }, 10s))
      << io_test::Slurp(log);
  int fd = ::open(P("x.slow").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  std::atomic<double> took{-1};
  std::thread caller([&] { took = TimedFsync(fd, true); });
  std::this_thread::sleep_for(100ms);  // the reply is held now (its deadline 300 ms out)
  ::kill(helper.pid(), SIGSTOP);
  std::this_thread::sleep_for(600ms);
  ::kill(helper.pid(), SIGCONT);
  caller.join();
  ::close(fd);
  EXPECT_GE(took.load(), 650.0);
  helper.Stop(SIGTERM);
  std::string out = io_test::Slurp(log);
  auto at = out.find("late_max_us=");
  ASSERT_NE(at, std::string::npos) << out;
  const long late_us = std::stol(out.substr(at + 12));
  EXPECT_NE(out.find("late_samples=1 "), std::string::npos) << out;
  EXPECT_GE(late_us, 250'000) << out;  // ~400 ms past the deadline
}

// Without CAP_SYS_NICE (and no RLIMIT_RTPRIO) the release thread cannot be real-time: the
// overlay still works, the thread stays SCHED_OTHER, and both the family's capability probe
// and the overlay say so and why.
TEST_F(OverlayTest, ReleaseFallsBackAndSaysSoWithoutCapSysNice) {
  std::string log = (tmp_->path() / "helper.log").string();
  io_test::Child helper({"prlimit", "--rtprio=0", "--", "setpriv", "--bounding-set=-sys_nice",
                         "--inh-caps=-sys_nice", HelperBinary(), dir_.string(), "50"},
                        log);
  ASSERT_TRUE(
      io_test::WaitFor([&] { return io_test::Slurp(log).find("ready") != std::string::npos; }, 10s))
      << io_test::Slurp(log);
  std::string out = io_test::Slurp(log);
  EXPECT_NE(out.find("ready realtime=0 probe=0 "), std::string::npos) << out;
  EXPECT_NE(out.find("SCHED_FIFO refused: Operation not permitted"), std::string::npos) << out;
  auto threads = testing::ThreadsNamed(helper.pid(), "fl-io-release");
  ASSERT_EQ(threads.size(), 1u) << "prlimit and setpriv exec the helper in place";
  EXPECT_EQ(threads[0].policy, SCHED_OTHER);
  int fd = ::open(P("x.slow").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  EXPECT_GE(TimedFsync(fd, true), 50.0);  // the delay is still served
  ::close(fd);
  helper.Stop(SIGTERM);
  EXPECT_NE(io_test::Slurp(log).find("late_samples=1 "), std::string::npos) << io_test::Slurp(log);
}

// With only two FUSE workers, eight fsyncs held for 1 s plus a stream of other ops would
// take seconds if a delayed op occupied a worker; deferred replies keep everything flowing.
TEST_F(OverlayTest, DelayedOpsDoNotSerializeTheFilesystem) {
  Overlay::Options o;
  o.max_threads = 2;
  Mount(o);
  std::vector<int> fds;
  for (int i = 0; i < 8; ++i) {
    int fd = ::open(P("slow" + std::to_string(i)).c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_EQ(::write(fd, "x", 1), 1);
    fds.push_back(fd);
  }
  Arm(RuleKind::kLatency, "slow*", Bit(Method::kFsync), [](RuleSpec& s) { s.delay = 1000ms; });
  std::atomic<int> slow_done{0};
  std::vector<double> slow_ms(8);
  std::vector<std::thread> threads;
  auto t0 = Clock::now();
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      slow_ms[i] = TimedFsync(fds[i]);
      ++slow_done;
    });
  }
  std::this_thread::sleep_for(50ms);
  int fast = ::open(P("fast").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fast, 0);
  char buf[512];
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(::pwrite(fast, buf, sizeof(buf), i * 512), 512);
    ASSERT_EQ(::pread(fast, buf, sizeof(buf), 0), 512);
    struct stat st;
    ASSERT_EQ(::stat(P("fast").c_str(), &st), 0);
  }
  double fast_ms = Millis(Clock::now() - t0);
  int done_during = slow_done.load();
  for (auto& t : threads) t.join();
  double all_ms = Millis(Clock::now() - t0);
  EXPECT_EQ(done_during, 0) << "a delayed fsync finished before 600 other ops did";
  EXPECT_LT(fast_ms, 1000.0);
  for (double ms : slow_ms) EXPECT_GE(ms, 1000.0);
  EXPECT_LT(all_ms, 2500.0) << "delayed fsyncs were served one after another (8 s if serial)";
  ::close(fast);
  for (int fd : fds) ::close(fd);
}

TEST_F(OverlayTest, ErrnoOnWriteAndRecover) {
  Mount();
  int fd = ::open(P("e.dat").c_str(), O_RDWR | O_CREAT, 0600);
  auto rule = Arm(RuleKind::kErrno, "e.dat", Bit(Method::kWrite), [](RuleSpec& s) {
    s.errnos = {{EIO, 1}};
  });
  EXPECT_EQ(::write(fd, "abc", 3), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_EQ(::fsync(fd), 0);  // other methods untouched
  overlay_->Disarm(rule->id());
  EXPECT_EQ(::write(fd, "abc", 3), 3);
  ::close(fd);
  EXPECT_EQ(ReadUnder("e.dat"), "abc");

  // errno on open and on mkdir of names under a glob.
  Arm(RuleKind::kErrno, "locked/**",
      Bit(Method::kOpen) | Bit(Method::kCreate) | Bit(Method::kMkdir), [](RuleSpec& s) {
        s.errnos = {{EROFS, 1}};
      });
  // "**" spans zero segments too, so "locked" itself matches "locked/**".
  EXPECT_EQ(::mkdir(P("locked").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
  ASSERT_EQ(::mkdirat(under_, "locked", 0755), 0);  // made underneath, behind the overlay
  EXPECT_EQ(::open(P("locked/f").c_str(), O_RDWR | O_CREAT, 0600), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::mkdir(P("locked/d").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
}

TEST_F(OverlayTest, PercentFiftyOverThousandOps) {
  Mount();
  int fd = ::open(P("p.dat").c_str(), O_RDWR | O_CREAT, 0600);
  auto rule = Arm(RuleKind::kErrno, "p.dat", Bit(Method::kWrite), [](RuleSpec& s) {
    s.errnos = {{EIO, 1}};
    s.percent = 50;
  });
  int failed = 0;
  for (int i = 0; i < 1000; ++i) failed += ::pwrite(fd, "x", 1, i) == -1 ? 1 : 0;
  ::close(fd);
  EXPECT_GT(failed, 440);
  EXPECT_LT(failed, 560);
  EXPECT_EQ(rule->matched(), 1000);
  EXPECT_EQ(rule->acted(), failed);  // the rule's own count agrees with what the caller saw
}

TEST_F(OverlayTest, MaxCount) {
  Mount();
  int fd = ::open(P("m.dat").c_str(), O_RDWR | O_CREAT, 0600);
  Arm(RuleKind::kErrno, "", Bit(Method::kWrite), [](RuleSpec& s) {
    s.errnos = {{EAGAIN, 1}};
    s.max_count = 3;
  });
  int failed = 0;
  for (int i = 0; i < 10; ++i) failed += ::pwrite(fd, "x", 1, i) == -1 ? 1 : 0;
  EXPECT_EQ(failed, 3);
  ::close(fd);
}

TEST_F(OverlayTest, ShortReadAndWrite) {
  Mount();
  Write("s.dat", std::string(8192, 's'));
  Arm(RuleKind::kShort, "s.dat", Bit(Method::kRead), [](RuleSpec& s) { s.short_fraction = 0.5; });
  int fd = ::open(P("s.dat").c_str(), O_RDONLY);
  char buf[8192];
  EXPECT_EQ(::pread(fd, buf, sizeof(buf), 0), 4096);
  ::close(fd);
  Arm(RuleKind::kShort, "w.dat", Bit(Method::kWrite), [](RuleSpec& s) { s.short_bytes = 100; });
  fd = ::open(P("w.dat").c_str(), O_RDWR | O_CREAT, 0600);
  EXPECT_EQ(::pwrite(fd, buf, 4096, 0), 100);
  ::close(fd);
  EXPECT_EQ(ReadUnder("w.dat").size(), 100u);
}

TEST_F(OverlayTest, CorruptOnReadLeavesDiskIntact) {
  Mount();
  std::string clean(4096, 'a');
  Write("c.dat", clean);
  auto rule = Arm(RuleKind::kCorrupt, "c.dat", Bit(Method::kRead), [](RuleSpec& s) {
    s.corrupt_mode = CorruptMode::kFlip;
    s.corrupt_max_bytes = 8;
  });
  std::string got = Read("c.dat");
  ASSERT_EQ(got.size(), clean.size());
  int diff = 0;
  for (size_t i = 0; i < got.size(); ++i) diff += got[i] != clean[i];
  EXPECT_EQ(diff, 8);
  EXPECT_EQ(ReadUnder("c.dat"), clean);
  overlay_->Disarm(rule->id());
  EXPECT_EQ(Read("c.dat"), clean);  // nothing corrupted was cached
}

TEST_F(OverlayTest, CorruptOnWriteReachesDisk) {
  Mount();
  Arm(RuleKind::kCorrupt, "cw.dat", Bit(Method::kWrite), [](RuleSpec& s) {
    s.corrupt_mode = CorruptMode::kZero;
    s.corrupt_on_write = true;
    s.corrupt_max_bytes = 4;
  });
  Write("cw.dat", std::string(4096, 'b'));
  std::string disk = ReadUnder("cw.dat");
  ASSERT_EQ(disk.size(), 4096u);
  EXPECT_EQ(std::count(disk.begin(), disk.end(), '\0'), 4);
  EXPECT_EQ(Read("cw.dat"), disk);  // a later reader sees what the disk holds
}

TEST_F(OverlayTest, AttrOverrideAndRecover) {
  Mount();
  Write("attr.dat", "12345");
  struct stat st;
  ASSERT_EQ(::stat(P("attr.dat").c_str(), &st), 0);  // cached attributes before arming
  auto rule = Arm(RuleKind::kAttr, "attr.dat", 0, [](RuleSpec& s) {
    s.attr.size = 999999;
    s.attr.mode = 0400;
    s.attr.mtime = 1000;
  });
  ASSERT_EQ(::stat(P("attr.dat").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 999999);
  EXPECT_EQ(st.st_mode & 07777, 0400u);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mtim.tv_sec, 1000);
  overlay_->Disarm(rule->id());
  ASSERT_EQ(::stat(P("attr.dat").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 5);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST_F(OverlayTest, EnospcAfterBudget) {
  Mount();
  int fd = ::open(P("full.dat").c_str(), O_RDWR | O_CREAT, 0600);
  Arm(RuleKind::kEnospcAfter, "", 0, [](RuleSpec& s) { s.enospc_after_bytes = 10000; });
  char buf[4096] = {};
  EXPECT_EQ(::write(fd, buf, 4096), 4096);
  EXPECT_EQ(::write(fd, buf, 4096), 4096);
  EXPECT_EQ(::write(fd, buf, 4096), 10000 - 8192);  // the last bytes that fit
  EXPECT_EQ(::write(fd, buf, 4096), -1);
  EXPECT_EQ(errno, ENOSPC);
  EXPECT_EQ(::fallocate(fd, 0, 0, 64 << 20), -1);  // etcd preallocates WAL segments like this
  EXPECT_EQ(errno, ENOSPC);
  ::close(fd);
  struct stat st;
  ASSERT_EQ(::stat(P("full.dat").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 10000);
}

// The io fault family end to end: validate, create, apply through the manager, observe, revert,
// and revert of a fault restored from the journal after its overlay is gone.
TEST_F(OverlayTest, FaultFamilyLifecycle) {
  auto owned = Manager();
  OverlayManager& manager = *owned;
  Registry registry;
  RegisterIoFaults(registry, manager);
  auto ov = manager.Mount(dir_);
  EXPECT_EQ(manager.Mount(dir_), ov);  // idempotent
  EXPECT_FALSE(ov->attached());
  EXPECT_NE(ov->pid(), ::getpid());  // served by its own process
  v1::FaultSpec spec;
  spec.set_seed(1);
  auto* io = spec.mutable_io();
  io->set_action(v1::IoFault::ERRNO);
  io->set_mount(dir_.string());
  io->set_path("*.wal");
  io->add_methods("write");
  io->add_errnos()->set_name("EIO");
  FaultContext ctx;
  auto fault = registry.Create(spec, ctx);
  fault->Prepare();
  std::string state = fault->State();
  fault->Apply();
  fault->Apply();  // idempotent
  EXPECT_EQ(ov->State().rules_size(), 1);
  EXPECT_EQ(fault->Kind(), "io/errno");
  int fd = ::open(P("x.wal").c_str(), O_RDWR | O_CREAT, 0600);
  EXPECT_EQ(::write(fd, "a", 1), -1);
  EXPECT_EQ(fault->Observe()["acted"], 1);
  EXPECT_EQ(fault->Observe()["errors"], 1);
  fault->Revert();
  fault->Revert();
  EXPECT_EQ(ov->State().rules_size(), 0);
  EXPECT_EQ(::write(fd, "a", 1), 1);
  ::close(fd);

  // Restored from the journal (rule 1 of an overlay instance that no longer exists).
  auto restored = registry.Find("io")->Restore(spec, R"({"instance":"dead","rule_id":1})", ctx);
  EXPECT_NO_THROW(restored->Revert());
  ov.reset();
  EXPECT_TRUE(manager.Unmount(dir_));
  EXPECT_FALSE(manager.Unmount(dir_));
  auto again = registry.Create(spec, ctx);
  EXPECT_THROW(again->Prepare(), FaultError);
}

// Gone, or a zombie its new parent has not reaped yet: either way it serves nothing.
bool ProcessGone(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return true;
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

// Issue 15: the overlay outlives its agent. A manager that goes away without ending its
// overlays (its agent died) leaves the overlay process serving; the rule it armed ends by its
// lease inside that process; the next manager attaches, lists it and controls it again.
TEST_F(OverlayTest, OverlayProcessOutlivesItsAgentAndEndsRulesByTheirLease) {
  v1::FaultSpec spec;
  spec.set_seed(3);
  auto* io = spec.mutable_io();
  io->set_action(v1::IoFault::LATENCY);
  io->set_mount(dir_.string());
  io->set_path("*.log");
  io->add_methods("fsync");
  io->mutable_delay()->set_nanos(200'000'000);
  pid_t server = 0;
  auto armed_at = Clock::now();
  {
    auto first = Manager();
    Registry registry;
    RegisterIoFaults(registry, *first);
    auto ov = first->Mount(dir_);
    server = ov->pid();
    auto fault = registry.Create(spec, FaultContext{});
    fault->Prepare();
    armed_at = Clock::now();
    fault->Lease(armed_at + 3s);
    fault->Apply();
    // Neither reverted nor unmounted: the agent is gone.
  }
  int fd = ::open(P("a.log").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(::write(fd, "x", 1), 1);
  EXPECT_GE(TimedFsync(fd), 150) << "the rule acts with its agent gone";
  // The overlay process ends it at its lease, by itself.
  ASSERT_TRUE(io_test::WaitFor([&] { return TimedFsync(fd) < 100; }, 15s));
  EXPECT_GE(Millis(Clock::now() - armed_at), 2900) << "not before its lease";

  auto second = Manager();
  auto did = second->Attach();
  ASSERT_EQ(did.size(), 1u);
  EXPECT_NE(did[0].find("attached"), std::string::npos) << did[0];
  auto ov = second->Find(dir_);
  ASSERT_TRUE(ov);
  EXPECT_TRUE(ov->attached());
  EXPECT_EQ(ov->pid(), server);
  auto state = ov->State();
  EXPECT_EQ(state.rules_size(), 0);
  EXPECT_EQ(state.leases_lapsed(), 1);
  EXPECT_EQ(second->Mount(dir_), ov);  // the same overlay, not a second mount
  // Controlled again by the new manager.
  uint64_t id = ov->Arm(spec, 30s);
  ASSERT_EQ(ov->State().rules_size(), 1);
  EXPECT_EQ(ov->State().rules(0).spec().io().path(), "*.log");
  EXPECT_GE(TimedFsync(fd), 150);
  EXPECT_TRUE(ov->Disarm(id));
  EXPECT_LT(TimedFsync(fd), 100);
  ::close(fd);
  Write("kept", "yes");
  second->UnmountAll();
  EXPECT_TRUE(io_test::WaitFor([&] { return ProcessGone(server); }, 5s));
  for (auto& m : FaultlineMounts()) EXPECT_NE(m.mount_point, dir_.string());
  EXPECT_EQ(ReadUnder("kept"), "yes");
  for (const auto& e : std::filesystem::directory_iterator(tmp_->path() / "sockets")) {
    EXPECT_NE(e.path().extension(), ".sock") << "the socket goes with its process";
  }
}

std::string HelperBinary() {
  return std::string(FAULTLINE_BINARY_DIR) + "/tests/integration/io/io_overlay_helper";
}

TEST_F(OverlayTest, CrashedDaemonLeavesDeadMountThatSweepClears) {
  Write("kept", "survives");
  std::string log = (tmp_->path() / "helper.log").string();
  io_test::Child helper({HelperBinary(), dir_.string()}, log);
  ASSERT_TRUE(
      io_test::WaitFor([&] { return io_test::Slurp(log).find("ready") != std::string::npos; }, 10s))
      << io_test::Slurp(log);
  // The rule is live in the helper: a write here fails.
  int fd = ::open(P("x.armed").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::write(fd, "a", 1), -1);
  EXPECT_EQ(errno, EIO);
  ::close(fd);
  // An overlay manager refuses to stack on a live overlay served by someone else.
  EXPECT_THROW(Manager()->Mount(dir_), FaultError);
  EXPECT_EQ(SweepStaleMounts({}, tmp_->path().string()).size(), 1u);  // "left live ... alone"

  helper.Stop(SIGKILL);
  struct statvfs sv;
  EXPECT_EQ(::statvfs(dir_.c_str(), &sv), -1);
  EXPECT_EQ(errno, ENOTCONN);
  auto did = SweepStaleMounts({}, tmp_->path().string());
  ASSERT_EQ(did.size(), 1u);
  EXPECT_NE(did[0].find("unmounted stale"), std::string::npos) << did[0];
  EXPECT_EQ(::statvfs(dir_.c_str(), &sv), 0) << strerror(errno);
  EXPECT_EQ(Read("kept"), "survives");
  Write("after", "ok");
  EXPECT_EQ(ReadUnder("after"), "ok");
  for (auto& m : FaultlineMounts()) EXPECT_NE(m.mount_point, dir_.string());
}

// The manager's own Mount clears a dead mount left at the same directory (agent restart).
TEST_F(OverlayTest, ManagerMountClearsDeadMount) {
  std::string log = (tmp_->path() / "helper.log").string();
  {
    io_test::Child helper({HelperBinary(), dir_.string()}, log);
    ASSERT_TRUE(io_test::WaitFor(
        [&] { return io_test::Slurp(log).find("ready") != std::string::npos; }, 10s));
    helper.Stop(SIGKILL);
  }
  auto manager = Manager();
  auto ov = manager->Mount(dir_);
  Write("f", "fine");
  EXPECT_EQ(ReadUnder("f"), "fine");
  ov.reset();
  manager->UnmountAll();
  for (auto& m : FaultlineMounts()) EXPECT_NE(m.mount_point, dir_.string());
}

}  // namespace
}  // namespace faultline::faults::io
