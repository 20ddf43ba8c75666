// Linearizability checker on generated histories: check time and peak memory per size, each case
// in its own forked child so ru_maxrss is that case's peak. Time is also given as a ratio to a
// baseline measured in the same child: sorting the history's 2n invoke/return events, the least
// any history checker has to do.
//
//   verify_bench                 the table for bench/RESULTS.md
//   verify_bench --case OPS KEYS CLIENTS STALE   one row (STALE: fraction, or -1 for none)
//   verify_bench --write FILE --ops N --keys K --clients C [--stale F] [--seed S]
//                                write one generated history (JSON lines) for `faultline check`
//   verify_bench --record FILE --endpoints CSV --clients C --keys K --seconds S [--rate R]
//                                record a real workload history on a cluster (see lab_histories.sh)
//   verify_bench [--stale F] --compare FILE...   check recorded histories next to generated ones
//                                of the same ops, keys, clients and share of unknown writes: the
//                                ratio says what real interleavings cost (--stale: one read of
//                                each made stale at fraction F, see MakeStaleRead)
//   verify_bench [--unknown F] --case ...   F: share of writes with an unknown outcome
//   verify_bench --watch [--case ...]   the history checks with watch events from 3 members
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench/verify/history_gen.h"
#include "controller/verify/history_checks.h"
#include "controller/verify/linearizability.h"
#include "controller/verify/watch_checks.h"
#include "controller/verify/workload.h"

namespace {

using namespace faultline;
using Clock = std::chrono::steady_clock;

struct Case {
  int64_t ops;
  int keys;
  int clients;
  double stale;            // < 0: linearizable
  double unknown = 0.001;  // writes whose client timed out (half of them still applied)
};

struct Row {
  double gen_s, baseline_s, check_s;
  long rss_before_kb, rss_peak_kb;
  int verdict;
  uint64_t steps, memo;
  size_t prefix_ops;
};

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

long MaxRssKb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

verify::History GenerateCase(const Case& c) {
  bench::GenOptions g;
  g.ops = c.ops;
  g.keys = c.keys;
  g.clients = c.clients;
  g.seed = static_cast<uint64_t>(c.ops) * 31 + c.keys * 7 + c.clients;
  g.stale_read_at = c.stale;
  g.unknown_fraction = c.unknown;
  return bench::Generate(g);
}

// A recorded history to check instead of a generated one (--compare); empty: generate.
std::string recorded_file;

Row RunCase(const Case& c) {
  Row r{};
  auto t0 = Clock::now();
  verify::History h;
  if (recorded_file.empty()) {
    h = GenerateCase(c);
  } else {
    std::ifstream in(recorded_file);
    h = verify::LoadJsonl(in);
    if (c.stale >= 0 && bench::MakeStaleRead(&h, c.stale) < 0) {
      std::fprintf(stderr, "verify_bench: no read of %s fits a stale read\n",
                   recorded_file.c_str());
      std::exit(1);
    }
  }
  auto t1 = Clock::now();
  r.gen_s = Seconds(t0, t1);
  // Baseline: sort every invoke/return event by time.
  std::vector<std::pair<int64_t, int64_t>> events;
  events.reserve(h.ops.size() * 2);
  auto b0 = Clock::now();
  for (const auto& op : h.ops) {
    events.push_back({op.invoke_ns, op.id});
    events.push_back({op.return_ns, -op.id});
  }
  std::sort(events.begin(), events.end());
  auto b1 = Clock::now();
  r.baseline_s = Seconds(b0, b1);
  events.clear();
  events.shrink_to_fit();
  r.rss_before_kb = MaxRssKb();
  auto c0 = Clock::now();
  verify::LinearizabilityResult lr = verify::CheckLinearizability(h);
  auto c1 = Clock::now();
  r.check_s = Seconds(c0, c1);
  r.rss_peak_kb = MaxRssKb();
  r.verdict = static_cast<int>(lr.verdict);
  r.steps = lr.steps;
  r.memo = lr.memo_entries;
  r.prefix_ops = lr.failures.empty() ? 0 : lr.failures[0].prefix_ops;
  return r;
}

// Runs a case in a child so its peak RSS is its own.
bool RunIsolated(const Case& c, Row* out) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    Row r = RunCase(c);
    ssize_t n = write(fds[1], &r, sizeof r);
    _exit(n == sizeof r ? 0 : 1);
  }
  close(fds[1]);
  ssize_t n = read(fds[0], out, sizeof *out);
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return n == sizeof *out && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

const char* VerdictName(int v) {
  return v == 0 ? "linearizable" : v == 1 ? "NOT lin." : "inconcl.";
}

int Table(bool quick, const std::vector<Case>& only) {
  std::vector<Case> cases = {{10'000, 10, 8, -1},
                             {10'000, 1000, 64, -1},
                             {100'000, 10, 8, -1},
                             {100'000, 100, 32, -1},
                             {100'000, 1000, 64, -1},
                             {100'000, 10, 64, -1},
                             {1'000'000, 10, 8, -1},
                             {1'000'000, 10, 64, -1},
                             {1'000'000, 100, 32, -1},
                             {1'000'000, 1000, 64, -1},
                             {100'000, 10, 8, 0.9},
                             {100'000, 10, 64, 0.5},
                             {100'000, 1000, 64, 0.9},
                             {1'000'000, 10, 8, 0.9},
                             {1'000'000, 10, 64, 0.5},
                             {1'000'000, 1000, 64, 0.5},
                             {1'000'000, 1, 64, -1},
                             {1'000'000, 1, 64, 0.5},
                             // Many unknown outcomes, as while a member is cut off.
                             {100'000, 10, 16, -1, 0.05},
                             {100'000, 10, 16, 0.5, 0.05},
                             {1'000'000, 10, 64, -1, 0.02},
                             {1'000'000, 10, 64, 0.5, 0.02}};
  if (quick) cases.resize(2);
  if (!only.empty()) cases = only;
  std::printf(
      "| ops | keys | clients | history | verdict | check s | baseline sort s | ratio | "
      "search steps | memo entries | peak RSS MiB (before check) | shrunk to ops |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Case& c : cases) {
    Row r{};
    if (!RunIsolated(c, &r)) {
      std::printf("| %lld | %d | %d | case failed |\n", static_cast<long long>(c.ops), c.keys,
                  c.clients);
      continue;
    }
    std::string history =
        c.stale < 0 ? "linearizable"
                    : "stale read at " + std::to_string(static_cast<int>(c.stale * 100)) + "%";
    if (c.unknown != 0.001) {
      history += ", " + std::to_string(static_cast<int>(c.unknown * 100)) + "% unknown writes";
    }
    std::printf(
        "| %lld | %d | %d | %s | %s | %.3f | %.3f | %.1fx | %llu | %llu | %.0f (%.0f) | %s |\n",
        static_cast<long long>(c.ops), c.keys, c.clients, history.c_str(), VerdictName(r.verdict),
        r.check_s, r.baseline_s, r.check_s / std::max(r.baseline_s, 1e-9),
        static_cast<unsigned long long>(r.steps), static_cast<unsigned long long>(r.memo),
        r.rss_peak_kb / 1024.0, r.rss_before_kb / 1024.0,
        r.prefix_ops ? std::to_string(r.prefix_ops).c_str() : "-");
    std::fflush(stdout);
  }
  return 0;
}

// The history checks with watches: a generated history whose changes every one of `watchers`
// members' watchers received (history_gen's GenOptions::watchers). Times, in one child per row:
// linearizability alone (as in the table above), the eight watch guarantees, and everything
// `faultline check history` runs; the baseline sorts the watch events by (revision, key).
struct WatchRow {
  size_t events;
  double lin_s, watch_s, all_s, baseline_s;
  long rss_before_kb, rss_peak_kb;
  bool all_passed;
};

int WatchTable(const std::vector<Case>& only) {
  std::vector<Case> cases = only.empty() ? std::vector<Case>{{100'000, 10, 8, -1},
                                                             {1'000'000, 10, 8, -1},
                                                             {1'000'000, 1000, 64, -1}}
                                         : only;
  std::printf(
      "| ops | keys | clients | watchers | watch events | linearizability s | watch guarantees s "
      "| all history checks s | baseline sort s | watch ratio | peak RSS MiB (before checks) | "
      "verdict |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Case& c : cases) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      bench::GenOptions g;
      g.ops = c.ops;
      g.keys = c.keys;
      g.clients = c.clients;
      g.seed = static_cast<uint64_t>(c.ops) * 31 + c.keys * 7 + c.clients;
      g.unknown_fraction = c.unknown;
      g.watchers = 3;
      verify::History h = bench::Generate(g);
      WatchRow r{};
      r.events = h.watch_events.size();
      std::vector<std::pair<int64_t, std::string_view>> keys;
      keys.reserve(h.watch_events.size());
      auto b0 = Clock::now();
      for (const auto& e : h.watch_events) keys.push_back({e.revision, e.key});
      std::sort(keys.begin(), keys.end());
      r.baseline_s = Seconds(b0, Clock::now());
      keys.clear();
      keys.shrink_to_fit();
      r.rss_before_kb = MaxRssKb();
      auto t0 = Clock::now();
      bool lin = verify::CheckLinearizability(h).ok();
      auto t1 = Clock::now();
      auto watch = verify::CheckWatchGuarantees(h);
      auto t2 = Clock::now();
      auto all = verify::CheckHistory(h);
      auto t3 = Clock::now();
      r.lin_s = Seconds(t0, t1);
      r.watch_s = Seconds(t1, t2);
      r.all_s = Seconds(t2, t3);
      r.rss_peak_kb = MaxRssKb();
      r.all_passed = lin && verify::AllPassed(watch) && verify::AllPassed(all);
      ssize_t n = write(fds[1], &r, sizeof r);
      _exit(n == sizeof r ? 0 : 1);
    }
    close(fds[1]);
    WatchRow r{};
    ssize_t n = read(fds[0], &r, sizeof r);
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (n != sizeof r) {
      std::printf("| %lld | %d | %d | 3 | case failed |\n", static_cast<long long>(c.ops), c.keys,
                  c.clients);
      continue;
    }
    std::printf(
        "| %lld | %d | %d | 3 | %zu | %.3f | %.3f | %.3f | %.3f | %.1fx | %.0f (%.0f) | %s |\n",
        static_cast<long long>(c.ops), c.keys, c.clients, r.events, r.lin_s, r.watch_s, r.all_s,
        r.baseline_s, r.watch_s / std::max(r.baseline_s, 1e-9), r.rss_peak_kb / 1024.0,
        r.rss_before_kb / 1024.0, r.all_passed ? "all pass" : "FAILED");
    std::fflush(stdout);
  }
  return 0;
}

// Each recorded history, then a generated one with the same ops, keys and clients, each in its
// own child. "ratio" is recorded check time over generated check time.
int Compare(const std::vector<std::string>& files, double stale) {
  std::printf(
      "| history | ops | keys | clients | unknown ops | verdict | check s | generated check s | "
      "ratio | steps (generated) | peak RSS MiB (generated) | failure shown on ops |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& file : files) {
    std::ifstream in(file);
    if (!in) {
      std::fprintf(stderr, "verify_bench: cannot open %s\n", file.c_str());
      return 2;
    }
    verify::History h = verify::LoadJsonl(in);
    std::set<std::string> keys;
    std::set<int> clients;
    int64_t unknown = 0, writes = 0;
    for (const auto& op : h.ops) {
      keys.insert(op.key);
      clients.insert(op.client);
      if (op.outcome == verify::Outcome::kUnknown) ++unknown;
      if (op.type != verify::OpType::kGet) ++writes;
    }
    Case c{static_cast<int64_t>(h.ops.size()), static_cast<int>(keys.size()),
           static_cast<int>(clients.size()), stale,
           writes == 0 ? 0.0 : double(unknown) / double(writes)};
    Row rec{}, gen{};
    recorded_file = file;
    bool ok = RunIsolated(c, &rec);
    recorded_file.clear();
    ok = ok && RunIsolated(c, &gen);
    std::string name = file.substr(file.rfind('/') + 1);
    if (!ok) {
      std::printf("| %s | case failed |\n", name.c_str());
      continue;
    }
    std::printf(
        "| %s | %lld | %d | %d | %lld | %s | %.3f | %.3f | %.2fx | %llu (%llu) | %.0f (%.0f) | %s "
        "|\n",
        (name + (stale >= 0 ? ", stale read" : "")).c_str(), static_cast<long long>(c.ops), c.keys,
        c.clients, static_cast<long long>(unknown), VerdictName(rec.verdict), rec.check_s,
        gen.check_s, rec.check_s / std::max(gen.check_s, 1e-9),
        static_cast<unsigned long long>(rec.steps), static_cast<unsigned long long>(gen.steps),
        rec.rss_peak_kb / 1024.0, gen.rss_peak_kb / 1024.0,
        rec.prefix_ops ? std::to_string(rec.prefix_ops).c_str() : "-");
    std::fflush(stdout);
  }
  return 0;
}

// Runs the library's workload against a real cluster for `seconds` and saves its history.
int Record(const std::string& file, verify::WorkloadOptions wo, double seconds) {
  verify::Workload w(wo);
  w.Start();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  w.Stop();
  std::ofstream out(file, std::ios::trunc);
  verify::SaveJsonl(w.history(), out);
  std::fprintf(stderr, "verify_bench: recorded %zu ops, %zu watch events to %s\n",
               w.history().ops.size(), w.history().watch_events.size(), file.c_str());
  return out ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string write_to;
  bench::GenOptions g;
  bool quick = false, watch_table = false;
  std::vector<Case> only;
  std::string record_to;
  verify::WorkloadOptions wo;
  wo.rate = 0;  // as fast as the cluster goes
  wo.op_timeout = std::chrono::milliseconds(1000);
  double seconds = 20;
  std::vector<std::string> compare;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "verify_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--write")
      write_to = next();
    else if (a == "--ops")
      g.ops = std::stoll(next());
    else if (a == "--keys")
      g.keys = std::stoi(next());
    else if (a == "--clients")
      g.clients = std::stoi(next());
    else if (a == "--stale")
      g.stale_read_at = std::stod(next());
    else if (a == "--seed")
      g.seed = std::stoull(next());
    else if (a == "--record")
      record_to = next();
    else if (a == "--endpoints")
      wo.endpoints = verify::SplitEndpoints(next());
    else if (a == "--seconds")
      seconds = std::stod(next());
    else if (a == "--rate")
      wo.rate = std::stod(next());
    else if (a == "--unknown")  // for --write and the --case rows after it
      g.unknown_fraction = std::stod(next());
    else if (a == "--compare") {
      while (i + 1 < argc && argv[i + 1][0] != '-') compare.push_back(argv[++i]);
    } else if (a == "--quick")
      quick = true;
    else if (a == "--watch")
      watch_table = true;
    else if (a == "--case") {  // OPS KEYS CLIENTS STALE (a fraction, or -1 for none)
      Case c{};
      c.ops = std::stoll(next());
      c.keys = std::stoi(next());
      c.clients = std::stoi(next());
      c.stale = std::stod(next());
      c.unknown = g.unknown_fraction;
      only.push_back(c);
    } else {
      std::fprintf(stderr, "verify_bench: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (!record_to.empty()) {
    wo.clients = g.clients;
    wo.keys = g.keys;
    wo.seed = g.seed;
    return Record(record_to, wo, seconds);
  }
  if (!compare.empty()) return Compare(compare, g.stale_read_at);
  if (!write_to.empty()) {
    std::ofstream out(write_to);
    verify::SaveJsonl(bench::Generate(g), out);
    return out ? 0 : 1;
  }
  return watch_table ? WatchTable(only) : Table(quick, only);
}
