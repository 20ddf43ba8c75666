#include "faults/stress/stress_faults.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "faults/core/host.h"
#include "faults/stress/cgroup.h"
#include "faults/stress/size.h"
#include "faults/stress/spec.h"
#include "faults/stress/worker.h"
#include "faults/sys/unique_fd.h"

namespace faultline::faults::stress {
namespace {

using json = nlohmann::json;
using v1::StressFault;

int OnlineCpus() { return static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))); }
int ConfiguredCpus() { return static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_CONF))); }

int Workers(const StressFault& f) { return f.workers() == 0 ? 1 : static_cast<int>(f.workers()); }

uint64_t DefaultFloor(uint64_t total) { return std::max<uint64_t>(256ull << 20, total / 20); }

uint64_t ResolveBytes(const StressFault& f, uint64_t total) {
  if (f.size_case() == StressFault::kSizePercent) {
    return static_cast<uint64_t>(static_cast<double>(total) * f.size_percent() / 100.0);
  }
  return f.size_bytes();
}

// cgroup v2 keeps cpu.stat (usage_usec) even with no controller enabled.
int64_t CgroupCpuMs(const std::filesystem::path& dir) {
  std::ifstream in(dir / "cpu.stat");
  std::string key;
  int64_t v;
  while (in >> key >> v) {
    if (key == "usage_usec") return v / 1000;
  }
  return -1;
}

int64_t RssBytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

class StressFaultImpl : public Fault {
 public:
  StressFaultImpl(v1::FaultSpec spec, const FaultContext& ctx, const StressOptions& options,
                  std::string fault_id)
      : spec_(std::move(spec)),
        f_(spec_.stress()),
        options_(options),
        fault_id_(std::move(fault_id)) {
    (void)ctx;
  }

  ~StressFaultImpl() override {
    // A fault dropped without Revert (agent shutdown paths) must not leave workers or a thread.
    if (keeper_.joinable()) {
      try {
        Revert();
      } catch (...) {
        StopKeeper();
      }
    }
  }

  std::string Kind() const override { return "stress/" + ActionName(f_.action()); }

  void Prepare() override {
    if (!cgroup_.empty()) return;
    std::filesystem::path root =
        options_.cgroup_root.empty() ? CgroupV2Root() : options_.cgroup_root;
    if (root.empty()) throw FaultError("stress: no cgroup v2 hierarchy is mounted on this host");
    cgroup_ = root / options_.cgroup_parent / fault_id_;
    if (f_.action() == StressFault::MEMORY) {
      MemInfo m = ReadMemInfo();
      bytes_ = ResolveBytes(f_, m.total);
      uint64_t floor = f_.floor_bytes() != 0 ? f_.floor_bytes() : DefaultFloor(m.total);
      if (!f_.force() && (m.available < bytes_ || m.available - bytes_ < floor)) {
        throw FaultError(
            "stress.size: holding " + FormatBytes(bytes_) + " would leave " +
            (m.available < bytes_ ? std::string("nothing") : FormatBytes(m.available - bytes_)) +
            " of MemAvailable (" + FormatBytes(m.available) + " now), below the safety floor of " +
            FormatBytes(floor) + "; set force to override");
      }
    }
  }

  std::string State() const override {
    return json{{"cgroup", cgroup_.string()}, {"fault_id", fault_id_}}.dump();
  }

  void LoadState(std::string_view state) {
    auto j = json::parse(state, nullptr, false);
    if (!j.is_discarded() && j.contains("cgroup")) {
      cgroup_ = j["cgroup"].get<std::string>();
      fault_id_ = j.value("fault_id", fault_id_);
    }
    applied_ = true;  // whatever the journal says was started may be running: revert kills it
  }

  void Apply() override {
    std::lock_guard lock(mu_);
    if (applied_) return;
    Prepare();
    std::error_code ec;
    std::filesystem::create_directories(cgroup_.parent_path(), ec);
    if (ec) throw FaultError("creating " + cgroup_.parent_path().string() + ": " + ec.message());
    if (::mkdir(cgroup_.c_str(), 0755) != 0 && errno != EEXIST)
      ThrowErrno("mkdir " + cgroup_.string());
    try {
      StartWorkers();
    } catch (...) {
      StopKeeper();
      KillAndRemoveCgroup(cgroup_);
      throw;
    }
    applied_ = true;
  }

  void Revert() override {
    std::lock_guard lock(mu_);
    if (reverted_) return;
    if (!cgroup_.empty()) killed_ = KillAndRemoveCgroup(cgroup_);
    StopKeeper();
    reverted_ = true;
  }

  std::string Describe() const override {
    std::string what;
    int n = Workers(f_);
    if (f_.action() == StressFault::CPU) {
      what = "cpu stress: " + std::to_string(n) + " worker(s) at " + std::to_string(f_.load()) +
             "% of a CPU each, SCHED_BATCH";
      if (f_.cpus_size() > 0) {
        std::string cpus;
        for (auto c : f_.cpus()) cpus += (cpus.empty() ? "" : ",") + std::to_string(c);
        what += ", pinned to CPU " + cpus;
      }
    } else {
      what = "memory stress: " +
             FormatBytes(bytes_ != 0 ? bytes_ : ResolveBytes(f_, ReadMemInfo().total)) +
             " held by " + std::to_string(n) + " worker(s)";
      if (f_.size_case() == StressFault::kSizePercent) {
        char buf[32];
        std::snprintf(buf, sizeof buf, " (%g%% of RAM)", f_.size_percent());
        what += buf;
      }
      if (f_.growth_bytes_per_second() != 0) {
        what += ", growing " + FormatBytes(f_.growth_bytes_per_second()) + "/s";
      }
      if (f_.mlock()) what += ", mlocked";
    }
    return what + " in cgroup " + cgroup_.string();
  }

  Counters Observe() const override {
    Counters c{{"workers", Workers(f_)}};
    std::lock_guard lock(keeper_mu_);
    int64_t running = 0, rss = 0;
    for (int pid : pids_) {
      if (exited_.count(pid) != 0) continue;
      ++running;
      rss += RssBytes(pid);
    }
    c["workers_running"] = running;
    c["workers_exited"] = static_cast<int64_t>(exited_.size());
    if (f_.action() == StressFault::MEMORY) c["rss_bytes"] = rss;
    int64_t cpu = CgroupCpuMs(cgroup_);
    if (cpu >= 0) c["cpu_ms"] = cpu;
    if (killed_ >= 0) c["killed"] = killed_;
    return c;
  }

 private:
  std::vector<WorkerPlan> Plans() const {
    std::vector<WorkerPlan> plans;
    int n = Workers(f_);
    int adj = f_.has_oom_score_adj() ? f_.oom_score_adj() : 1000;
    for (int i = 0; i < n; ++i) {
      WorkerPlan p;
      p.index = i;
      p.oom_score_adj = adj;
      if (f_.action() == StressFault::CPU) {
        p.kind = WorkerPlan::kCpu;
        p.load = f_.load() / 100.0;
        if (f_.cpus_size() > 0) p.cpu = static_cast<int>(f_.cpus(i % f_.cpus_size()));
      } else {
        p.kind = WorkerPlan::kMemory;
        // Spread the size evenly; the first worker takes the remainder.
        p.bytes = bytes_ / n + (i == 0 ? bytes_ % n : 0);
        p.growth_bytes_per_second = f_.growth_bytes_per_second() / n;
        if (f_.growth_bytes_per_second() != 0 && p.growth_bytes_per_second == 0) {
          p.growth_bytes_per_second = 1;
        }
        p.mlock = f_.mlock();
      }
      plans.push_back(p);
    }
    return plans;
  }

  void StartWorkers() {
    auto plans = Plans();
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) ThrowErrno("pipe2");
    sys::UniqueFd read_end(fds[0]);
    auto write_end = std::make_shared<sys::UniqueFd>(fds[1]);
    auto filter = BuildWorkerFilter(write_end->get());
    sys::UniqueFd cgroup_fd(::open(cgroup_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cgroup_fd) ThrowErrno("open " + cgroup_.string());

    // PR_SET_PDEATHSIG fires when the *thread* that forked a worker exits, so the workers are
    // forked by a thread of their own that lives exactly as long as they do (an RPC handler
    // thread would take them down when it returns).
    std::promise<std::string> started;
    auto started_future = started.get_future();
    keeper_ = std::thread([this, plans, write_end, filter = std::move(filter),
                           cgfd = cgroup_fd.get(), started = std::move(started)]() mutable {
      std::string error;
      for (const auto& plan : plans) {
        try {
          pid_t pid = SpawnWorker(plan, cgfd, write_end->get(), filter);
          std::lock_guard lock(keeper_mu_);
          pids_.push_back(pid);
        } catch (const std::exception& e) {
          error = e.what();
          break;
        }
      }
      write_end->reset();  // the workers hold the only write ends now: EOF means all died
      started.set_value(error);
      KeeperLoop();
    });
    std::string error = started_future.get();
    if (!error.empty()) throw FaultError(error);

    // Each worker reports once it is confined and running, or why it is not.
    size_t expected = plans.size(), seen = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (seen < expected) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw FaultError("stress workers did not report within 10s");
      pollfd p{read_end.get(), POLLIN, 0};
      int rc = ::poll(&p, 1, static_cast<int>(left.count()));
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) ThrowErrno("poll");
      if (rc == 0) continue;
      WorkerReport r{};
      ssize_t got = ::read(read_end.get(), &r, sizeof r);
      if (got == 0) throw FaultError("stress workers exited before reporting (see dmesg)");
      if (got != static_cast<ssize_t>(sizeof r)) ThrowErrno("reading worker reports");
      if (r.code != 0) {
        throw FaultError("stress worker " + std::to_string(r.index) + " failed at " +
                         WorkerStageName(r.stage) + ": " + std::strerror(r.code));
      }
      ++seen;
    }
  }

  // Reaps this fault's workers (only them: the agent has other children) and notices deaths,
  // e.g. an OOM kill of a memory worker.
  void KeeperLoop() {
    std::unique_lock lock(keeper_mu_);
    while (true) {
      for (int pid : pids_) {
        if (exited_.count(pid) != 0) continue;
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) exited_[pid] = status;
      }
      if (stop_) break;
      keeper_cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
    // Revert has killed the cgroup; collect the bodies.
    for (int pid : pids_) {
      if (exited_.count(pid) != 0) continue;
      int status = 0;
      lock.unlock();
      pid_t r = ::waitpid(pid, &status, 0);
      lock.lock();
      exited_[pid] = r == pid ? status : -1;
    }
  }

  void StopKeeper() {
    {
      std::lock_guard lock(keeper_mu_);
      stop_ = true;
    }
    keeper_cv_.notify_all();
    if (keeper_.joinable()) {
      if (!cgroup_.empty()) {
        // Make sure the blocking waitpid in KeeperLoop ends.
        std::lock_guard lock(keeper_mu_);
        for (int pid : pids_) {
          if (exited_.count(pid) == 0) ::kill(pid, SIGKILL);
        }
      }
      keeper_.join();
    }
  }

  v1::FaultSpec spec_;
  const StressFault& f_;
  StressOptions options_;
  std::string fault_id_;
  std::filesystem::path cgroup_;
  uint64_t bytes_ = 0;
  std::mutex mu_;
  bool applied_ = false;
  bool reverted_ = false;
  int64_t killed_ = -1;

  mutable std::mutex keeper_mu_;
  std::condition_variable keeper_cv_;
  std::thread keeper_;
  bool stop_ = false;
  std::vector<int> pids_;
  std::map<int, int> exited_;
};

class StressFactory : public FaultFactory {
 public:
  explicit StressFactory(StressOptions options) : options_(std::move(options)) {}

  std::string_view Family() const override { return "stress"; }

  // The host-free checks (faults/stress/spec.h), then this host's CPUs and RAM.
  FieldErrors Validate(const v1::FaultSpec& spec) const override {
    FieldErrors e = ValidateSpec(spec);
    const auto& f = spec.stress();
    const int max_workers = 4 * OnlineCpus();
    if (static_cast<int64_t>(f.workers()) > max_workers) {
      e.push_back({"stress.workers", "at most " + std::to_string(max_workers) +
                                         " (4 x this host's " + std::to_string(OnlineCpus()) +
                                         " CPUs), got " + std::to_string(f.workers())});
    }
    if (f.action() == StressFault::CPU) {
      for (int i = 0; i < f.cpus_size(); ++i) {
        if (static_cast<int>(f.cpus(i)) >= ConfiguredCpus()) {
          e.push_back({"stress.cpus[" + std::to_string(i) + "]",
                       "no CPU " + std::to_string(f.cpus(i)) + " on this host (it has " +
                           std::to_string(ConfiguredCpus()) + ")"});
        }
      }
    }
    if (f.action() == StressFault::MEMORY && f.size_case() == StressFault::kSizeBytes) {
      uint64_t total = ReadMemInfo().total;
      if (f.size_bytes() > total) {
        e.push_back({"stress.size_bytes", FormatBytes(f.size_bytes()) +
                                              " is larger than this host's RAM (" +
                                              FormatBytes(total) + ")"});
      }
    }
    return e;
  }

  std::unique_ptr<Fault> Create(const v1::FaultSpec& spec, const FaultContext& ctx) const override {
    return std::make_unique<StressFaultImpl>(spec, ctx, options_, NewFaultId(ctx));
  }

  std::unique_ptr<Fault> Restore(const v1::FaultSpec& spec, std::string_view state,
                                 const FaultContext& ctx) const override {
    auto f = std::make_unique<StressFaultImpl>(spec, ctx, options_, NewFaultId(ctx));
    f->LoadState(state);
    return f;
  }

  std::vector<std::string> Sweep(const FaultContext& ctx) const override {
    std::vector<std::string> done;
    std::filesystem::path root =
        options_.cgroup_root.empty() ? CgroupV2Root() : options_.cgroup_root;
    if (root.empty()) return done;
    std::filesystem::path parent = root / options_.cgroup_parent;
    const std::string tag = AgentTag(ctx.state_dir);
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
      std::string name = entry.path().filename();
      if (!entry.is_directory(ec) || name.rfind(tag, 0) != 0) continue;
      try {
        int killed = KillAndRemoveCgroup(entry.path());
        done.push_back("removed stress cgroup " + entry.path().string() + " (killed " +
                       std::to_string(killed) + " worker(s))");
      } catch (const std::exception& e) {
        done.push_back("could not remove stress cgroup " + entry.path().string() + ": " + e.what());
      }
    }
    // The shared parent goes once no agent has a stress cgroup under it (EBUSY otherwise).
    ::rmdir(parent.c_str());
    return done;
  }

  std::map<std::string, std::pair<bool, std::string>> Probe() const override {
    std::map<std::string, std::pair<bool, std::string>> out;
    std::filesystem::path root =
        options_.cgroup_root.empty() ? CgroupV2Root() : options_.cgroup_root;
    out["cgroup2"] = {!root.empty(),
                      root.empty() ? "no cgroup2 mount" : "mounted at " + root.string()};
    out["clone_into_cgroup"] = {KernelAtLeast(5, 7), "clone3 CLONE_INTO_CGROUP needs Linux 5.7"};
    out["cgroup_kill"] = {KernelAtLeast(5, 14),
                          KernelAtLeast(5, 14) ? "cgroup.kill" : "falls back to killing each pid"};
    std::ifstream actions("/proc/sys/kernel/seccomp/actions_avail");
    std::string avail((std::istreambuf_iterator<char>(actions)), {});
    bool kill_process = avail.find("kill_process") != std::string::npos;
    out["seccomp"] = {kill_process,
                      kill_process ? "filter with kill_process" : "no seccomp kill_process"};
    return out;
  }

 private:
  std::string NewFaultId(const FaultContext& ctx) const {
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    return AgentTag(ctx.state_dir) + std::to_string(::getpid()) + "-" +
           std::to_string(next_.fetch_add(1)) + "-" + std::to_string(now % 1000000007);
  }

  StressOptions options_;
  mutable std::atomic<uint64_t> next_{1};
};

}  // namespace

std::string AgentTag(const std::filesystem::path& state_dir) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "a%08llx-",
                static_cast<unsigned long long>(StableHash(state_dir.string()) & 0xffffffffull));
  return buf;
}

std::unique_ptr<FaultFactory> MakeStressFactory(StressOptions options) {
  return std::make_unique<StressFactory>(std::move(options));
}

void RegisterStressFaults(Registry& registry, StressOptions options) {
  registry.Add(MakeStressFactory(std::move(options)));
}

}  // namespace faultline::faults::stress
