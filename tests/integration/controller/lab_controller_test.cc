// The lab's own faultline-controller (issue 7), measured from outside the controller: the issue's
// IOChaos manifest is submitted verbatim and its effect timed by a plain process fsyncing inside
// the chosen member's data dir (and by etcd's own WAL fsync histogram); two `@every 20s`
// schedules are watched through the etcd and sentinel processes' states; /metrics is scraped
// and compared with the gRPC answers. One lab serves every test of this file.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "faultline/v1/agent.grpc.pb.h"
#include "faultline/v1/controller.grpc.pb.h"
#include "faults/process/proc.h"
#include "faults/sys/unique_fd.h"
#include "tests/support/shared_lab_test.h"
#include "tests/support/test_lab.h"

namespace faultline::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using SysClock = std::chrono::system_clock;

// Issue 7's IOChaos example, verbatim (the shipped example adds only comments). The lab's agents
// carry app=etcd, so the selector matches every member; volumePath names the overlay over the
// chosen member's etcd data dir.
std::string IssueIoChaos() {
  std::ifstream in(std::string(FAULTLINE_SOURCE_DIR) +
                   "/experiments/examples/chaos-mesh/io-delay-example.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// An fsync slower than this was delayed by the 100 ms rule (an undelayed one on this disk
// takes a few ms).
constexpr double kSlowMs = 90;

double Seconds(const google::protobuf::Timestamp& t) { return t.seconds() + t.nanos() / 1e9; }
double Now() { return std::chrono::duration<double>(SysClock::now().time_since_epoch()).count(); }

// A plain process's view of IO in `dir`: `n` rounds of a 4 KiB write and a timed fsync.
std::vector<double> FsyncMs(const std::filesystem::path& dir, int n) {
  auto path = dir / ("faultline-probe-" + std::to_string(::getpid()));
  sys::UniqueFd fd(::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644));
  EXPECT_TRUE(fd) << path << ": " << strerror(errno);
  std::vector<double> out;
  if (!fd) return out;
  std::string block(4096, 'p');
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(::pwrite(fd.get(), block.data(), block.size(), off_t(i) * 4096), 4096);
    auto t0 = Clock::now();
    EXPECT_EQ(::fsync(fd.get()), 0) << strerror(errno);
    out.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  fd.reset();
  ::unlink(path.c_str());
  return out;
}

double SlowShare(const std::vector<double>& ms) {
  if (ms.empty()) return 0;
  return double(std::count_if(ms.begin(), ms.end(), [](double v) { return v >= kSlowMs; })) /
         double(ms.size());
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

char StateOf(pid_t pid, uint64_t start_time) {
  auto p = faults::process::ReadProc(pid);
  return p && p->start_time == start_time ? p->state : '-';
}

class LabController : public SharedLabTest {
 protected:
  void SetUp() override {
    SharedLabTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_FALSE(lab_->controller().empty()) << "the lab came up without a controller";
    stub_ = v1::Controller::NewStub(
        grpc::CreateChannel(lab_->controller(), grpc::InsecureChannelCredentials()));
  }

  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(SysClock::now() + 10s);
    return c;
  }
  std::string Log() const {
    std::ifstream in(lab_->info().dir + "/controller.log");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
  }
  v1::Run GetRun(const std::string& id) {
    v1::GetRunRequest req;
    req.set_id(id);
    v1::Run r;
    auto st = stub_->GetRun(Ctx().get(), req, &r);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return r;
  }
  std::vector<v1::Run> Runs(const std::string& experiment) {
    v1::ListRunsRequest req;
    req.set_experiment_name(experiment);
    v1::ListRunsResponse r;
    auto st = stub_->ListRuns(Ctx().get(), req, &r);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::vector<v1::Run> out(r.runs().begin(), r.runs().end());
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return Seconds(a.started_at()) < Seconds(b.started_at());
    });
    return out;
  }
  v1::ScheduleState Schedule(const std::string& name) {
    v1::ListSchedulesResponse r;
    auto st = stub_->ListSchedules(Ctx().get(), {}, &r);
    EXPECT_TRUE(st.ok()) << st.error_message();
    for (const auto& s : r.schedules()) {
      if (s.experiment_name() == name) return s;
    }
    ADD_FAILURE() << "no schedule " << name;
    return {};
  }
  // The events of a run so far (live while it runs, the report's afterwards).
  json Events(const std::string& id) {
    json j = json::parse(GetRun(id).report_json(), nullptr, false);
    return j.is_object() ? j.value("events", json::array()) : json::array();
  }
  lab::CommandResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), Binary("cli/faultline"));
    return lab::RunCommand(args, 20s);
  }
  // Sum and count of etcd's etcd_disk_wal_fsync_duration_seconds, from the member's /metrics.
  static std::pair<double, double> WalFsync(const lab::MemberInfo& m) {
    auto r = lab::RunCommand({"curl", "-s", "--max-time", "5", m.client_url + "/metrics"});
    auto value = [&](const std::string& name) {
      size_t at = r.out.find("\n" + name + " ");
      return at == std::string::npos ? -1.0 : std::stod(r.out.substr(at + name.size() + 2));
    };
    return {value("etcd_disk_wal_fsync_duration_seconds_sum"),
            value("etcd_disk_wal_fsync_duration_seconds_count")};
  }
  // Mean WAL fsync (ms) of member `m` over `puts` writes to the cluster.
  static double WalFsyncMeanMs(const lab::MemberInfo& m, int puts) {
    auto [s0, c0] = WalFsync(m);
    for (int i = 0; i < puts; ++i) {
      lab::RunCommand({"/usr/bin/etcdctl", "--endpoints", lab_->EndpointsCsv(), "put",
                       "/labctl/wal/" + std::to_string(i), "v"});
    }
    auto [s1, c1] = WalFsync(m);
    return c1 > c0 ? (s1 - s0) * 1000 / (c1 - c0) : -1;
  }
  // /metrics of the lab's controller: "name{labels}" -> value.
  std::map<std::string, double> ScrapeController() {
    auto r = lab::RunCommand({"curl", "-s", "--max-time", "5",
                              "http://" + lab_->info().controller.metrics_listen + "/metrics"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, double> out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty() || line[0] == '#') continue;
      auto sp = line.rfind(' ');
      out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    }
    return out;
  }

  std::unique_ptr<v1::Controller::Stub> stub_;
};

TEST_F(LabController, IssueIoChaosManifestSlowsTheChosenMembersFsyncsUntilCancelled) {
  const auto& members = lab_->info().members;
  for (const auto& m : members) {
    auto ms = FsyncMs(m.data_dir, 20);
    std::cout << m.name << " before: fsync median " << Median(ms) << " ms, " << SlowShare(ms) * 100
              << "% >= " << kSlowMs << " ms\n";
  }

  double submitted = Now();
  v1::SubmitExperimentRequest req;
  req.set_yaml(IssueIoChaos());
  ASSERT_NE(req.yaml().find("kind: IOChaos"), std::string::npos);
  req.set_file_name("io-delay-example.yaml");
  req.set_run_now(true);
  v1::SubmitExperimentResponse resp;
  auto st = stub_->SubmitExperiment(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.run_ids_size(), 1);
  const std::string run = resp.run_ids(0);

  // Scheduled by its `scheduler` field: every 10 minutes from the submission.
  v1::ScheduleState sched = Schedule("io-delay-example");
  EXPECT_EQ(sched.cron(), "@every 10m");
  EXPECT_FALSE(sched.paused());
  double next = Seconds(sched.next_run());
  std::cout << "schedule @every 10m: next run " << next - submitted << " s after the submission\n";
  EXPECT_NEAR(next - submitted, 600, 2);

  // The fault lands on one member (mode one). Which one is the controller's word; the probes
  // below check it independently: that member's fsyncs are slow, the others' are not.
  std::string member, agent;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& e : Events(run)) {
          if (e.value("kind", "") == "fault.applied") {
            member = e.value("member", "");
            agent = e.value("agent", "");
            return true;
          }
          if (e.value("kind", "") == "error") return true;
        }
        return false;
      },
      30s))
      << Events(run).dump(1) << Log();
  ASSERT_FALSE(member.empty()) << Events(run).dump(1);
  const lab::MemberInfo& chosen = members[size_t(lab_->IndexOf(member))];
  EXPECT_EQ(agent, "unix://" + chosen.agent_socket);

  std::map<std::string, std::vector<double>> during;
  for (const auto& m : members) {
    during[m.name] = FsyncMs(m.data_dir, 40);
    std::cout << m.name << (m.name == member ? " (chosen)" : "") << " during: fsync median "
              << Median(during[m.name]) << " ms, " << SlowShare(during[m.name]) * 100
              << "% >= " << kSlowMs << " ms\n";
  }
  // 50% of the overlay's operations wait 100 ms; an fsync of freshly written data is one or
  // two of them (the flush of the write and the fsync): 36-53% here. Fewer than 8 of 40 would
  // happen by chance once in thousands of runs.
  EXPECT_GE(SlowShare(during[member]), 0.2);
  EXPECT_LE(SlowShare(during[member]), 0.95) << "percent: 50 spares some";
  for (const auto& m : members) {
    if (m.name != member) {
      EXPECT_LE(SlowShare(during[m.name]), 0.15) << m.name;
    }
  }
  double wal_during = WalFsyncMeanMs(chosen, 20);
  std::cout << member << ": etcd's own WAL fsync mean during the fault " << wal_during << " ms\n";
  EXPECT_GE(wal_during, 20) << "etcd's WAL (member/wal/*.wal) is under the path glob";

  // The 400 s duration is long: cancel. The run recovers its fault on the agent.
  v1::CancelRunRequest cancel;
  cancel.set_id(run);
  v1::Run ignored;
  ASSERT_TRUE(stub_->CancelRun(Ctx().get(), cancel, &ignored).ok());
  ASSERT_TRUE(WaitFor([&] { return GetRun(run).state() != v1::Run::RUNNING; }, 20s)) << Log();
  EXPECT_EQ(GetRun(run).state(), v1::Run::CANCELLED) << GetRun(run).summary();

  // The agent's list: the run's fault is reverted, none of it is active.
  auto agent_stub =
      v1::Agent::NewStub(grpc::CreateChannel(agent, grpc::InsecureChannelCredentials()));
  v1::ListRequest lreq;
  lreq.set_include_ended(true);
  v1::ListResponse list;
  ASSERT_TRUE(agent_stub->List(Ctx().get(), lreq, &list).ok());
  int reverted = 0;
  for (const auto& f : list.faults()) {
    if (f.experiment_id() != run) continue;
    EXPECT_EQ(f.state(), v1::FaultStatus::REVERTED) << f.DebugString();
    EXPECT_EQ(f.kind().rfind("io/", 0), 0u) << f.kind();
    reverted += f.state() == v1::FaultStatus::REVERTED;
  }
  EXPECT_EQ(reverted, 1);

  auto after = FsyncMs(chosen.data_dir, 30);
  std::cout << member << " after cancel: fsync median " << Median(after) << " ms, "
            << SlowShare(after) * 100 << "% >= " << kSlowMs << " ms\n";
  EXPECT_LE(SlowShare(after), 0.15);
  double wal_after = WalFsyncMeanMs(chosen, 20);
  std::cout << member << ": etcd's own WAL fsync mean after cancel " << wal_after << " ms\n";
  EXPECT_LT(wal_after, wal_during / 2);

  // Cancelling the run leaves the schedule as it was.
  sched = Schedule("io-delay-example");
  EXPECT_NEAR(Seconds(sched.next_run()), next, 0.5);
  EXPECT_EQ(sched.active_run_ids_size(), 0);

  // The CLI reaches the same controller with --lab alone.
  auto runs = Cli({"runs", "--lab", "-o", "json"});
  ASSERT_EQ(runs.exit_code, 0) << runs.err;
  EXPECT_NE(runs.out.find(run), std::string::npos) << runs.out;
  EXPECT_NE(runs.out.find("CANCELLED"), std::string::npos) << runs.out;
  auto pause = Cli({"schedule", "pause", "io-delay-example", "--lab", lab_->name()});
  ASSERT_EQ(pause.exit_code, 0) << pause.err;
  EXPECT_NE(pause.out.find("paused"), std::string::npos) << pause.out;
  EXPECT_TRUE(Schedule("io-delay-example").paused());
}

// Two schedules submitted together, both `@every 20s`: "short" pauses a follower's etcd for 3 s
// (done long before the next due time), "forbid" holds a sentinel process stopped for 30 s, so
// its second due time finds its first run active and is skipped.
TEST_F(LabController, EveryTwentySecondsRunsTwiceAMinuteAndForbidSkipsTheOverlap) {
  const std::string tag = std::to_string(::getpid());
  Subprocess sentinel({"sleep", "7777." + tag});
  auto sentinel_start = faults::process::ReadProc(sentinel.pid())->start_time;
  const std::string yaml =
      "apiVersion: faultline/v1\nkind: Experiment\nmetadata: {name: short}\nspec:\n"
      "  seed: 7\n  workload: {kind: none}\n  steps:\n"
      "    - name: pause-follower\n      target: {role: followers, mode: one}\n"
      "      duration: 3s\n      fault: {process: {action: pause, target: {managed: etcd}}}\n"
      "  checks: [health]\n"
      "  schedule: {cron: '@every 20s', concurrencyPolicy: allow}\n"
      "---\n"
      "apiVersion: faultline/v1\nkind: Experiment\nmetadata: {name: forbid}\nspec:\n"
      "  seed: 8\n  workload: {kind: none}\n  steps:\n"
      "    - name: pause-sentinel\n      target: {mode: one, matchLabels: {member: e1}}\n"
      "      duration: 30s\n"
      "      fault: {process: {action: pause, target: {cmdline: '^sleep 7777\\." +
      tag +
      "$'}}}\n"
      "  checks: [health]\n"
      "  schedule: {cron: '@every 20s', concurrencyPolicy: forbid}\n";
  TempDir dir("faultline-labctl");
  auto file = dir.path() / "every20s.yaml";
  std::ofstream(file) << yaml;

  // An independent record: the state letter of every etcd and of the sentinel every 100 ms.
  struct Sample {
    double t;
    bool etcd_stopped;
    bool sentinel_stopped;
  };
  std::vector<Sample> samples;
  std::mutex mu;
  std::atomic<bool> stop{false};
  std::thread sampler([&] {
    while (!stop) {
      bool etcd = false;
      for (const auto& m : lab_->info().members) {
        etcd = etcd || StateOf(m.etcd_pid, m.etcd_start_time) == 'T';
      }
      bool sent = StateOf(sentinel.pid(), sentinel_start) == 'T';
      {
        std::lock_guard lock(mu);
        samples.push_back({Now(), etcd, sent});
      }
      std::this_thread::sleep_for(100ms);
    }
  });
  struct StopSampler {
    std::atomic<bool>& stop;
    std::thread& t;
    ~StopSampler() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } stop_sampler{stop, sampler};

  const double submitted = Now();
  auto submit = Cli({"submit", file.string(), "--lab", lab_->name()});
  ASSERT_EQ(submit.exit_code, 0) << submit.out << submit.err;
  EXPECT_NE(submit.out.find("submitted short"), std::string::npos) << submit.out;
  EXPECT_NE(submit.out.find("submitted forbid"), std::string::npos) << submit.out;
  const double due1 = Seconds(Schedule("short").next_run());
  EXPECT_EQ(Seconds(Schedule("forbid").next_run()), due1);
  const double due2 = due1 + 20;
  std::cout << "first due time " << due1 - Now() << " s from now\n";

  // Until "short" has finished its second run (due2 + 3 s fault + checks).
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = Runs("short");
        return r.size() >= 2 && r[1].state() != v1::Run::RUNNING;
      },
      std::chrono::milliseconds(int64_t((due2 - Now() + 20) * 1000))))
      << Log();
  const double checked_at = Now();
  auto shorts = Runs("short");
  auto forbids = Runs("forbid");
  v1::ScheduleState fs = Schedule("forbid"), ss = Schedule("short");

  // Twice within a minute, 20 s apart, as the controller recorded it...
  ASSERT_EQ(shorts.size(), 2u) << Log();
  double s1 = Seconds(shorts[0].started_at()), s2 = Seconds(shorts[1].started_at());
  std::cout << "short: runs started " << s1 - due1 << " s and " << s2 - due2
            << " s after their due times, " << s2 - s1 << " s apart; both "
            << GetRun(shorts[0].id()).summary() << " / " << GetRun(shorts[1].id()).summary()
            << "\n";
  EXPECT_NEAR(s2 - s1, 20, 1);
  EXPECT_NEAR(s1 - due1, 0.5, 1.5);
  EXPECT_LT(s2 - submitted, 60) << "twice within a minute of the submission";
  for (const auto& r : shorts) EXPECT_EQ(r.state(), v1::Run::PASSED) << r.summary();
  EXPECT_EQ(ss.skipped(), 0u);
  // ... and Forbid: one run, still holding its fault at the second due time, which was skipped.
  ASSERT_EQ(forbids.size(), 1u) << Log();
  EXPECT_EQ(forbids[0].state(), v1::Run::RUNNING);
  EXPECT_EQ(fs.skipped(), 1u);
  EXPECT_EQ(fs.missed(), 0u);
  ASSERT_EQ(fs.active_run_ids_size(), 1);
  EXPECT_EQ(fs.active_run_ids(0), forbids[0].id());

  // Independently, from the processes: two windows of a stopped etcd, 20 s apart, each about the
  // fault's 3 s; one window of a stopped sentinel that began at the first due time and was
  // still going at the second.
  std::vector<std::pair<double, double>> etcd_windows, sentinel_windows;
  {
    std::lock_guard lock(mu);
    auto windows = [&](bool Sample::*field, std::vector<std::pair<double, double>>& out) {
      bool in = false;
      for (const auto& s : samples) {
        if (s.*field && !in) out.push_back({s.t, s.t});
        if (s.*field) out.back().second = s.t;
        in = s.*field;
      }
    };
    windows(&Sample::etcd_stopped, etcd_windows);
    windows(&Sample::sentinel_stopped, sentinel_windows);
  }
  for (const auto& [a, b] : etcd_windows) {
    std::cout << "etcd stopped from due1" << (a - due1 >= 0 ? "+" : "") << a - due1 << " s for "
              << b - a << " s\n";
  }
  for (const auto& [a, b] : sentinel_windows) {
    std::cout << "sentinel stopped from due1+" << a - due1 << " s, still at due1+" << b - due1
              << " s (the last sample)\n";
  }
  ASSERT_EQ(etcd_windows.size(), 2u);
  EXPECT_NEAR(etcd_windows[1].first - etcd_windows[0].first, 20, 1);
  EXPECT_NEAR(etcd_windows[0].first - due1, 1, 2);
  for (const auto& [a, b] : etcd_windows) EXPECT_NEAR(b - a, 3, 1);
  ASSERT_EQ(sentinel_windows.size(), 1u);
  // Later than the etcd pause: the run's cluster discovery may ask the member the other schedule
  // just paused first, and waits for it.
  EXPECT_NEAR(sentinel_windows[0].first - due1, 3, 3);
  EXPECT_GE(sentinel_windows[0].second, std::min(checked_at, due2 + 3) - 0.5)
      << "the sentinel was released before the skipped due time";

  // Tidy: no further runs, the active one cancelled and its sentinel released at once.
  for (const char* name : {"short", "forbid"}) {
    auto p = Cli({"schedule", "pause", name, "--lab"});
    EXPECT_EQ(p.exit_code, 0) << p.err;
  }
  v1::CancelRunRequest cancel;
  cancel.set_id(forbids[0].id());
  v1::Run ignored;
  ASSERT_TRUE(stub_->CancelRun(Ctx().get(), cancel, &ignored).ok());
  EXPECT_TRUE(WaitFor([&] { return StateOf(sentinel.pid(), sentinel_start) != 'T'; }, 10s));
  EXPECT_TRUE(WaitFor([&] { return GetRun(forbids[0].id()).state() == v1::Run::CANCELLED; }, 20s));
}

TEST_F(LabController, MetricsAgreeWithTheControllersAnswers) {
  // Whatever earlier tests left, /metrics and the gRPC lists agree...
  auto compare = [&] {
    auto m = ScrapeController();
    std::map<std::string, double> by_state;
    for (const auto& r : Runs("")) {
      std::string s = v1::Run::State_Name(r.state());
      std::transform(s.begin(), s.end(), s.begin(), ::tolower);
      ++by_state[s];
    }
    for (const char* s : {"running", "passed", "failed", "error", "cancelled", "interrupted"}) {
      EXPECT_EQ(m["faultline_controller_runs{state=\"" + std::string(s) + "\"}"], by_state[s]) << s;
    }
    EXPECT_EQ(m["faultline_controller_runs_active"], by_state["running"]);
    v1::ListSchedulesResponse sr;
    EXPECT_TRUE(stub_->ListSchedules(Ctx().get(), {}, &sr).ok());
    double paused = 0;
    for (const auto& s : sr.schedules()) {
      paused += s.paused();
      std::string l = "{schedule=\"" + s.experiment_name() + "\"}";
      EXPECT_EQ(m["faultline_controller_schedule_paused" + l], double(s.paused())) << l;
      EXPECT_EQ(m["faultline_controller_schedule_skipped_total" + l], s.skipped()) << l;
      EXPECT_EQ(m["faultline_controller_schedule_missed_total" + l], s.missed()) << l;
      EXPECT_EQ(m["faultline_controller_schedule_active_runs" + l], s.active_run_ids_size()) << l;
      EXPECT_EQ(m["faultline_controller_schedule_next_run_timestamp_seconds" + l],
                s.paused() ? 0.0 : double(s.next_run().seconds()))
          << l;
    }
    EXPECT_EQ(m["faultline_controller_schedules{state=\"paused\"}"], paused);
    EXPECT_EQ(m["faultline_controller_schedules{state=\"active\"}"], sr.schedules_size() - paused);
    // The lab gives the controller its agents with --agents; none registers.
    EXPECT_EQ(m["faultline_controller_agents_static"], lab_->size());
    EXPECT_EQ(m["faultline_controller_agents_registered"], 0);
    EXPECT_EQ(m["faultline_controller_agents_alive"], 0);
    return m;
  };
  auto m0 = compare();

  // ... and move with what happens: a paused schedule, and a run while it runs and after.
  const std::string yaml =
      "apiVersion: faultline/v1\nkind: Experiment\nmetadata: {name: metrics-run}\nspec:\n"
      "  seed: 9\n  workload: {kind: none}\n  steps:\n"
      "    - name: pause-follower\n      target: {role: followers, mode: one}\n"
      "      duration: 3s\n      fault: {process: {action: pause, target: {managed: etcd}}}\n"
      "  checks: [health]\n"
      "---\n"
      "apiVersion: faultline/v1\nkind: Experiment\nmetadata: {name: metrics-paused}\nspec:\n"
      "  workload: {kind: none}\n  steps: [{wait: 1s}]\n"
      "  schedule: {cron: '@hourly', suspend: true}\n";
  v1::SubmitExperimentRequest req;
  req.set_yaml(yaml);
  req.set_file_name("metrics.yaml");
  v1::SubmitExperimentResponse resp;
  auto st = stub_->SubmitExperiment(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  req.set_yaml(yaml.substr(0, yaml.find("---")));
  req.set_run_now(true);
  st = stub_->SubmitExperiment(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.run_ids_size(), 1);
  auto m1 = compare();
  EXPECT_EQ(m1["faultline_controller_runs_active"], m0["faultline_controller_runs_active"] + 1);
  EXPECT_EQ(m1["faultline_controller_schedules{state=\"paused\"}"],
            m0["faultline_controller_schedules{state=\"paused\"}"] + 1);
  EXPECT_EQ(m1["faultline_controller_schedule_paused{schedule=\"metrics-paused\"}"], 1);
  ASSERT_TRUE(WaitFor([&] { return GetRun(resp.run_ids(0)).state() != v1::Run::RUNNING; }, 30s));
  auto m2 = compare();
  EXPECT_EQ(m2["faultline_controller_runs_active"], m0["faultline_controller_runs_active"]);
  EXPECT_EQ(m2["faultline_controller_runs{state=\"passed\"}"],
            m0["faultline_controller_runs{state=\"passed\"}"] + 1)
      << GetRun(resp.run_ids(0)).summary();
}

// Last in the suite: it kills the lab's controller. A leader-targeted pause lands on the member an
// independent etcdctl calls leader; SIGKILL of the controller mid-run cannot clean up, so what
// ends the pause is the fault's lease on the agent (the lab's controller leases for 15 s).
TEST_F(LabController, LeaderTargetedPauseHitsEtcdctlsLeaderAndOutlivesAKilledControllerByItsLease) {
  std::string leader;
  ASSERT_TRUE(WaitFor([&] { return !(leader = lab_->EtcdctlLeader()).empty(); }, 20s));
  const lab::MemberInfo& m = lab_->info().members[size_t(lab_->IndexOf(leader))];
  v1::SubmitExperimentRequest req;
  req.set_file_name("leader-pause.yaml");
  req.set_run_now(true);
  req.set_yaml(
      "apiVersion: faultline/v1\nkind: Experiment\nmetadata: {name: lab-leader-pause}\n"
      "spec:\n  seed: 11\n  workload: {kind: none}\n  steps:\n    - name: pause\n"
      "      fault: {process: {action: pause, target: {managed: etcd}}}\n"
      "      target: {role: leader, mode: one}\n      duration: 120s\n  checks: [health]\n");
  v1::SubmitExperimentResponse resp;
  auto st = stub_->SubmitExperiment(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.run_ids_size(), 1);
  const std::string run = resp.run_ids(0);
  json applied;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& e : Events(run)) {
          if (e.value("kind", "") == "fault.applied") applied = e;
        }
        return !applied.is_null();
      },
      20s))
      << Log();
  EXPECT_EQ(applied.value("member", ""), leader) << applied.dump();
  EXPECT_TRUE(WaitFor([&] { return StateOf(m.etcd_pid, m.etcd_start_time) == 'T'; }, 5s))
      << leader << " (etcdctl's leader) is not the member that was paused";

  // The controller dies without recovering anything; the agent's lease is what remains.
  ASSERT_EQ(::kill(lab_->info().controller.pid, SIGKILL), 0);
  const auto killed = Clock::now();
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(StateOf(m.etcd_pid, m.etcd_start_time), 'T') << "ended before its lease";
  ASSERT_TRUE(WaitFor(
      [&] {
        return StateOf(m.etcd_pid, m.etcd_start_time) == 'S' ||
               StateOf(m.etcd_pid, m.etcd_start_time) == 'R';
      },
      25s))
      << "the pause outlived its lease";
  double after = std::chrono::duration<double>(Clock::now() - killed).count();
  std::printf("pause ended %.1f s after the controller was killed (lease 15 s)\n", after);
  EXPECT_LE(after, 15 + 3);
  // The cluster is whole again: the paused member rejoins.
  EXPECT_TRUE(WaitFor([&] { return !lab_->EtcdctlLeader().empty(); }, 20s));
}

}  // namespace
}  // namespace faultline::testing
