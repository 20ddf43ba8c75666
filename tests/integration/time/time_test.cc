// Time faults on real processes: a probe child reports its own clocks, etcd (a Go binary that
// reads the vDSO directly) reports its time in HTTP Date headers; the host's clock is read by
// raw syscall, the vDSO bytes from outside through /proc/PID/mem.
#include <elf.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include "faults/core/duration.h"
#include "faults/core/registry.h"
#include "faults/process/proc.h"
#include "faults/time/skew.h"
#include "faults/time/spec.h"
#include "faults/time/time_faults.h"
#include "faults/time/vdso.h"
#include "tests/support/subprocess.h"

namespace faultline::faults::time {
namespace {

using namespace std::chrono_literals;
using testing::AgentProcess;
using testing::Subprocess;
using testing::TempDir;
using testing::WaitFor;

const std::string kProbe = FAULTLINE_BINARY_DIR "/tests/integration/time/time_clock_probe";
constexpr int64_t kSec = 1'000'000'000;

// The host's clock, by syscall: never through any vDSO.
int64_t HostNs(clockid_t id) {
  timespec ts{};
  ::syscall(SYS_clock_gettime, id, &ts);
  return ts.tv_sec * kSec + ts.tv_nsec;
}

std::string VdsoBytes(pid_t pid) {
  auto m = FindVdso(pid);
  if (!m) return "";
  std::ifstream mem("/proc/" + std::to_string(pid) + "/mem", std::ios::binary);
  mem.seekg(static_cast<std::streamoff>(m->base));
  std::string out(m->size, '\0');
  mem.read(out.data(), static_cast<std::streamsize>(out.size()));
  return out;
}

// "" when equal, else where the first byte differs: readable failures for binary images.
std::string Diff(const std::string& a, const std::string& b) {
  if (a == b) return "";
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  char buf[96];
  std::snprintf(buf, sizeof buf, "sizes %zu/%zu, first difference at +0x%zx", a.size(), b.size(),
                i);
  return buf;
}

// The probe child; killed and reaped on destruction.
class Probe {
 public:
  explicit Probe(int threads = 0) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      std::string n = std::to_string(threads);
      execl(kProbe.c_str(), kProbe.c_str(), n.c_str(), nullptr);
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = fdopen(in[1], "w");
    from_ = fdopen(out[0], "r");
    Read();  // the probe answers once it runs: exec is done, its vDSO is its own
  }
  ~Probe() {
    if (to_) fclose(to_);
    if (from_) fclose(from_);
    Kill();
  }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  pid_t pid() const { return pid_; }

  struct Reading {
    int64_t realtime = 0, monotonic = 0, boottime = 0, tod_us = 0, time_s = 0, spins = 0;
    // The host's clocks read just before the request (by syscall).
    int64_t host_realtime = 0, host_monotonic = 0;
    double RealtimeSkewSec() const { return double(realtime - host_realtime) / kSec; }
    double TodSkewSec() const { return double(tod_us * 1000 - host_realtime) / kSec; }
    double TimeSkewSec() const { return double(time_s * kSec - host_realtime) / kSec; }
    double MonotonicSkewSec() const { return double(monotonic - host_monotonic) / kSec; }
  };
  Reading Read() {
    Reading r;
    r.host_realtime = HostNs(CLOCK_REALTIME);
    r.host_monotonic = HostNs(CLOCK_MONOTONIC);
    std::fputs("q\n", to_);
    std::fflush(to_);
    long long a, b, c, d, e;
    long s;
    if (std::fscanf(from_, "%lld %lld %lld %lld %lld %ld", &a, &b, &c, &d, &e, &s) != 6) {
      throw std::runtime_error("probe did not answer");
    }
    r.realtime = a, r.monotonic = b, r.boottime = c, r.tod_us = d, r.time_s = e, r.spins = s;
    return r;
  }

 private:
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
};

v1::FaultSpec OffsetSpec(pid_t pid, std::chrono::nanoseconds offset,
                         std::vector<v1::TimeFault::Clock> clocks = {}) {
  v1::FaultSpec spec;
  auto* t = spec.mutable_time();
  t->set_action(v1::TimeFault::OFFSET);
  t->mutable_target()->set_pid(pid);
  ToProto(offset, t->mutable_offset());
  for (auto c : clocks) t->add_clocks(c);
  return spec;
}

class TimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "ptrace of other processes needs root";
    RegisterTimeFaults(registry_);
    ctx_.agent_pid = getpid();
  }
  std::unique_ptr<Fault> Applied(const v1::FaultSpec& spec) {
    auto f = registry_.Create(spec, ctx_);
    f->Prepare();
    f->Apply();
    return f;
  }
  Registry registry_;
  FaultContext ctx_;
};

TEST_F(TimeTest, OffsetMovesOnlyTheTargetsWallClockAndRevertRestoresTheVdsoExactly) {
  Probe target(4), bystander;
  const std::string target_before = VdsoBytes(target.pid());
  const std::string bystander_before = VdsoBytes(bystander.pid());
  const std::string self_before = VdsoBytes(getpid());
  ASSERT_FALSE(target_before.empty());
  auto r0 = target.Read();
  EXPECT_NEAR(r0.RealtimeSkewSec(), 0, 1);

  auto f = Applied(OffsetSpec(target.pid(), -60s));
  EXPECT_EQ(f->Kind(), "time/offset");
  auto r1 = target.Read();
  EXPECT_NEAR(r1.RealtimeSkewSec(), -60, 1) << "clock_gettime(CLOCK_REALTIME)";
  EXPECT_NEAR(r1.TodSkewSec(), -60, 1) << "gettimeofday";
  EXPECT_NEAR(r1.TimeSkewSec(), -60, 2) << "time()";
  EXPECT_NEAR(r1.MonotonicSkewSec(), 0, 1) << "CLOCK_MONOTONIC was not asked for";
  // The four spinning threads kept reading the clock through the patch.
  std::this_thread::sleep_for(50ms);
  EXPECT_GT(target.Read().spins, r1.spins);
  EXPECT_NE(Diff(VdsoBytes(target.pid()), target_before), "");
  // Nobody else sees it: another process, the agent itself, the host (read by syscall).
  EXPECT_NEAR(bystander.Read().RealtimeSkewSec(), 0, 1);
  EXPECT_EQ(Diff(VdsoBytes(bystander.pid()), bystander_before), "");
  EXPECT_EQ(Diff(VdsoBytes(getpid()), self_before), "");
  timespec own{};
  clock_gettime(CLOCK_REALTIME, &own);
  EXPECT_NEAR(double(own.tv_sec * kSec + own.tv_nsec - HostNs(CLOCK_REALTIME)) / kSec, 0, 1);

  f->Revert();
  EXPECT_EQ(Diff(VdsoBytes(target.pid()), target_before), "") << "vDSO not restored byte for byte";
  auto r2 = target.Read();
  EXPECT_NEAR(r2.RealtimeSkewSec(), 0, 1);
  EXPECT_NEAR(r2.TodSkewSec(), 0, 1);
  std::this_thread::sleep_for(50ms);
  EXPECT_GT(target.Read().spins, r2.spins) << "threads stopped running after the revert";
  f->Revert();  // idempotent
  EXPECT_EQ(f->Observe().at("restored"), 1);
}

TEST_F(TimeTest, MonotonicAndBoottimeMoveWhenAskedAndRealtimeStays) {
  Probe target(2);
  const std::string before = VdsoBytes(target.pid());
  auto r0 = target.Read();
  auto f =
      Applied(OffsetSpec(target.pid(), 90s, {v1::TimeFault::MONOTONIC, v1::TimeFault::BOOTTIME}));
  auto r1 = target.Read();
  EXPECT_NEAR(r1.MonotonicSkewSec(), 90, 1);
  EXPECT_NEAR(double(r1.boottime - r0.boottime) / kSec, 90, 1);
  EXPECT_NEAR(r1.RealtimeSkewSec(), 0, 1);
  EXPECT_NEAR(r1.TodSkewSec(), 0, 1);
  f->Revert();
  EXPECT_EQ(Diff(VdsoBytes(target.pid()), before), "");
  EXPECT_NEAR(target.Read().MonotonicSkewSec(), 0, 1);
}

TEST_F(TimeTest, RevertFromTheJournalStateAloneAndAfterTheTargetExited) {
  Probe target(2), doomed;
  const std::string before = VdsoBytes(target.pid());
  auto spec = OffsetSpec(target.pid(), -30s);
  auto f = registry_.Create(spec, ctx_);
  f->Prepare();
  std::string state = f->State();
  f->Apply();
  EXPECT_NEAR(target.Read().RealtimeSkewSec(), -30, 1);
  // What a restarted agent does: rebuild the fault from its journal record, revert.
  auto restored = registry_.Find("time")->Restore(spec, state, ctx_);
  restored->Revert();
  EXPECT_EQ(Diff(VdsoBytes(target.pid()), before), "");
  EXPECT_NEAR(target.Read().RealtimeSkewSec(), 0, 1);

  auto g = Applied(OffsetSpec(doomed.pid(), 10s));
  doomed.Kill();
  EXPECT_NO_THROW(g->Revert());
  EXPECT_EQ(g->Observe().at("exited"), 1);
}

TEST_F(TimeTest, SweepRestoresAVdsoNoJournalListed) {
  Probe target(2);
  const std::string before = VdsoBytes(target.pid());
  auto info = process::ReadProc(target.pid());
  auto plan = PlanSkew(target.pid(), info->start_time, info->comm, -45 * kSec, 1);
  ApplySkew(plan, 5s);
  EXPECT_NEAR(target.Read().RealtimeSkewSec(), -45, 1);
  auto lines = registry_.Find("time")->Sweep(ctx_);
  bool named = false;
  for (const auto& l : lines) named |= l.find(std::to_string(target.pid())) != std::string::npos;
  EXPECT_TRUE(named) << ::testing::PrintToString(lines);
  EXPECT_EQ(Diff(VdsoBytes(target.pid()), before), "");
  EXPECT_NEAR(target.Read().RealtimeSkewSec(), 0, 1);
}

// A host runs several agents (the lab: one per member). Another agent's start-up sweep must not
// undo a fault whose agent is alive (here this process patched it; the sweep runs as pid 1).
TEST_F(TimeTest, AnotherAgentsSweepLeavesALiveAgentsFaultAlone) {
  Probe target(2);
  const std::string before = VdsoBytes(target.pid());
  auto info = process::ReadProc(target.pid());
  auto plan = PlanSkew(target.pid(), info->start_time, info->comm, -45 * kSec, 1);
  ApplySkew(plan, 5s);
  auto lines = SweepSkews(1, 5s);
  bool left = false;
  for (const auto& l : lines) {
    left |= l.find(std::to_string(target.pid())) != std::string::npos &&
            l.find("alone") != std::string::npos;
  }
  EXPECT_TRUE(left) << ::testing::PrintToString(lines);
  EXPECT_NEAR(target.Read().RealtimeSkewSec(), -45, 1);
  EXPECT_EQ(RevertSkew(plan, 5s), RevertResult::kRestored);
  EXPECT_EQ(Diff(VdsoBytes(target.pid()), before), "");
}

TEST_F(TimeTest, TwoFaultsOnOneProcessAreRefused) {
  Probe target;
  auto f = Applied(OffsetSpec(target.pid(), -5s));
  auto g = registry_.Create(OffsetSpec(target.pid(), -7s), ctx_);
  try {
    g->Prepare();
    FAIL() << "second fault accepted";
  } catch (const FaultError& e) {
    EXPECT_NE(std::string(e.what()).find("already has a time fault"), std::string::npos)
        << e.what();
  }
  EXPECT_NEAR(target.Read().RealtimeSkewSec(), -5, 1);
  f->Revert();
}

TEST_F(TimeTest, OffsetBeyondTheBoundIsRefusedNamingTheField) {
  Registry r;
  TimeOptions o;
  o.max_offset = 1h;
  RegisterTimeFaults(r, o);
  auto errors = r.Validate(OffsetSpec(1234, -2h));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "time.offset");
  EXPECT_NE(errors[0].reason.find("bound"), std::string::npos) << errors[0].reason;
  EXPECT_TRUE(r.Validate(OffsetSpec(1234, -59min)).empty());
}

TEST_F(TimeTest, ATracedProcessIsRefusedAndLeftUntouched) {
  Probe target;
  const std::string before = VdsoBytes(target.pid());
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t tracer = fork();
  if (tracer == 0) {
    char ok = ptrace(PTRACE_SEIZE, target.pid(), nullptr, nullptr) == 0 ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    pause();
    _exit(0);
  }
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y');
  auto f = registry_.Create(OffsetSpec(target.pid(), -60s), ctx_);
  try {
    f->Prepare();
    f->Apply();
    FAIL() << "a traced process was skewed";
  } catch (const FaultError& e) {
    EXPECT_NE(std::string(e.what()).find("already traced by pid " + std::to_string(tracer)),
              std::string::npos)
        << e.what();
  }
  kill(tracer, SIGKILL);
  waitpid(tracer, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
  EXPECT_EQ(Diff(VdsoBytes(target.pid()), before), "");
  EXPECT_NEAR(target.Read().RealtimeSkewSec(), 0, 1);
}

// A 32-bit i386 program (hand-made ELF: `for (;;) pause();`): its vDSO is not the x86-64 one.
TEST_F(TimeTest, ANonX8664TargetIsRefused) {
  TempDir dir("faultline-time-i386");
  std::string path = (dir.path() / "pause32").string();
  {
    const unsigned char code[] = {0xb8, 0x1d, 0, 0, 0, 0xcd, 0x80, 0xeb, 0xf7};
    Elf32_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS32;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_386;
    eh.e_version = EV_CURRENT;
    eh.e_entry = 0x08048000 + sizeof(Elf32_Ehdr) + sizeof(Elf32_Phdr);
    eh.e_phoff = sizeof(Elf32_Ehdr);
    eh.e_ehsize = sizeof(Elf32_Ehdr);
    eh.e_phentsize = sizeof(Elf32_Phdr);
    eh.e_phnum = 1;
    Elf32_Phdr ph{};
    ph.p_type = PT_LOAD;
    ph.p_vaddr = ph.p_paddr = 0x08048000;
    ph.p_filesz = ph.p_memsz = sizeof(Elf32_Ehdr) + sizeof(Elf32_Phdr) + sizeof(code);
    ph.p_flags = PF_R | PF_X;
    ph.p_align = 0x1000;
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(&eh), sizeof eh);
    out.write(reinterpret_cast<const char*>(&ph), sizeof ph);
    out.write(reinterpret_cast<const char*>(code), sizeof code);
  }
  ::chmod(path.c_str(), 0755);
  Subprocess i386({path});
  ASSERT_TRUE(WaitFor([&] { return process::ReadProc(i386.pid()).has_value(); }, 2s));
  std::this_thread::sleep_for(100ms);
  if (!i386.Running()) GTEST_SKIP() << "this kernel does not run i386 programs";
  const std::string before = VdsoBytes(i386.pid());
  auto f = registry_.Create(OffsetSpec(i386.pid(), -60s), ctx_);
  try {
    f->Prepare();
    FAIL() << "an i386 program was accepted";
  } catch (const FaultError& e) {
    EXPECT_NE(std::string(e.what()).find("32-bit i386 program"), std::string::npos) << e.what();
  }
  EXPECT_EQ(Diff(VdsoBytes(i386.pid()), before), "");
}

// The real agent: SIGKILLed while a skew is armed, its next start restores the vDSO.
TEST_F(TimeTest, AgentSigkillMidFaultNextStartRestoresTheVdso) {
  Probe target(2);
  const std::string before = VdsoBytes(target.pid());
  TempDir dir("faultline-time-agent");
  AgentProcess agent(dir.path());
  auto stub = agent.Stub();
  v1::InjectRequest req;
  *req.mutable_spec() = OffsetSpec(target.pid(), -60s);
  ToProto(10min, req.mutable_spec()->mutable_duration());
  v1::InjectResponse resp;
  {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + 10s);
    auto st = stub->Inject(&c, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << agent.log();
  }
  EXPECT_EQ(resp.fault().kind(), "time/offset");
  EXPECT_NEAR(target.Read().RealtimeSkewSec(), -60, 1);
  agent.Crash();
  std::this_thread::sleep_for(200ms);
  EXPECT_NEAR(target.Read().RealtimeSkewSec(), -60, 1) << "nothing but the agent reverts it";
  agent.Restart();
  EXPECT_TRUE(WaitFor([&] { return VdsoBytes(target.pid()) == before; }, 3s)) << agent.log();
  EXPECT_NEAR(target.Read().RealtimeSkewSec(), 0, 1);
}

// etcd, a Go program reading the vDSO directly, on loopback: the Date header of its HTTP
// answers is its own time.Now().
int64_t EtcdDate(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return 0;
  }
  std::string req = "GET /version HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
  close(fd);
  auto at = resp.find("\r\nDate: ");
  if (at == std::string::npos) return 0;
  tm t{};
  if (!strptime(resp.c_str() + at + 8, "%a, %d %b %Y %H:%M:%S GMT", &t)) return 0;
  return timegm(&t);
}

TEST_F(TimeTest, EtcdAGoBinarySeesTheOffsetAndItsThreadsSurviveApplyAndRevert) {
  if (access("/usr/bin/etcd", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/etcd";
  TempDir dir("faultline-time-etcd");
  const int port = 23790 + getpid() % 100;
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  const std::string peer = "http://127.0.0.1:" + std::to_string(port + 100);
  Subprocess etcd(
      {"/usr/bin/etcd", "--name", "t", "--data-dir", (dir.path() / "d").string(),
       "--listen-client-urls", url, "--advertise-client-urls", url, "--listen-peer-urls", peer,
       "--initial-advertise-peer-urls", peer, "--initial-cluster", "t=" + peer},
      (dir.path() / "etcd.log").string());
  ASSERT_TRUE(WaitFor([&] { return EtcdDate(port) != 0; }, 20s));
  const std::string before = VdsoBytes(etcd.pid());
  auto f = Applied(OffsetSpec(etcd.pid(), -1h));
  int64_t skew = EtcdDate(port) - HostNs(CLOCK_REALTIME) / kSec;
  EXPECT_NEAR(skew, -3600, 2);
  f->Revert();
  EXPECT_EQ(Diff(VdsoBytes(etcd.pid()), before), "");
  EXPECT_NEAR(EtcdDate(port) - HostNs(CLOCK_REALTIME) / kSec, 0, 2);
  EXPECT_TRUE(etcd.Running()) << "etcd died across apply/revert";
}

}  // namespace
}  // namespace faultline::faults::time
