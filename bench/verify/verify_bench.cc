// Linearizability checker on generated histories: check time and peak memory per size, each case
// in its own forked child so ru_maxrss is that case's peak. Time is also given as a ratio to a
// baseline measured in the same child: sorting the history's 2n invoke/return events, the least
// any history checker has to do.
//
//   verify_bench                 the table for bench/RESULTS.md
//   verify_bench [--unknown F] --case OPS KEYS CLIENTS STALE
//                                one row (STALE: fraction, or -1 for none; F: share of writes
//                                with an unknown outcome, default 0.001)
//   verify_bench --write FILE --ops N --keys K --clients C [--stale F] [--seed S]
//                                write one generated history (JSON lines) for `faultline check`
//   verify_bench --record FILE --endpoints A,B,C --clients C --keys K --seconds S [--rate R]
//                                record a workload's history from a real cluster (lab_bench.sh)
//   verify_bench --check FILE [--stale F] [--label TEXT]
//                                one row: the checker on a recorded history (made stale at F),
//                                next to a generated history of the same size
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
#include "controller/etcd/linearizability.h"
#include "controller/etcd/workload.h"

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

Row RunCase(const Case& c) {
  Row r{};
  bench::GenOptions g;
  g.ops = c.ops;
  g.keys = c.keys;
  g.clients = c.clients;
  g.seed = static_cast<uint64_t>(c.ops) * 31 + c.keys * 7 + c.clients;
  g.stale_read_at = c.stale;
  g.unknown_fraction = c.unknown;
  auto t0 = Clock::now();
  controller::etcd::History h = bench::Generate(g);
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
  controller::etcd::LinearizabilityResult lr = controller::etcd::CheckLinearizability(h);
  auto c1 = Clock::now();
  r.check_s = Seconds(c0, c1);
  r.rss_peak_kb = MaxRssKb();
  r.verdict = static_cast<int>(lr.verdict);
  r.steps = lr.steps;
  r.memo = lr.memo_entries;
  r.prefix_ops = lr.failures.empty() ? 0 : lr.failures[0].prefix_ops;
  return r;
}

// Runs `fn` in a child so its peak RSS is its own; `out` is copied back through a pipe.
template <typename Result, typename Fn>
bool Isolated(Fn fn, Result* out) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    Result r = fn();
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

// Runs a case in a child so its peak RSS is its own.
bool RunIsolated(const Case& c, Row* out) {
  return Isolated([&] { return RunCase(c); }, out);
}

int Record(const std::string& file, const std::string& endpoints, int clients, int keys,
           double seconds, double rate) {
  controller::etcd::WorkloadOptions o;
  for (size_t at = 0; at <= endpoints.size();) {
    size_t comma = endpoints.find(',', at);
    if (comma == std::string::npos) comma = endpoints.size();
    if (comma > at) o.endpoints.push_back(endpoints.substr(at, comma - at));
    at = comma + 1;
  }
  o.clients = clients;
  o.keys = keys;
  o.rate = rate;
  o.watch = false;  // the bench times the linearizability checker only
  o.op_timeout = std::chrono::milliseconds(1000);
  o.seed = static_cast<uint64_t>(clients) * 1000 + keys;
  controller::etcd::Workload w(o);
  w.Start();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  w.Stop();
  std::ofstream out(file);
  controller::etcd::SaveJsonl(w.history(), out);
  size_t unknown = 0;
  for (const auto& op : w.history().ops)
    unknown += op.outcome == controller::etcd::Outcome::kUnknown;
  std::fprintf(stderr, "recorded %zu ops (%zu unknown) from %d clients on %d keys into %s\n",
               w.history().ops.size(), unknown, clients, keys, file.c_str());
  return out ? 0 : 1;
}

struct CheckRow {
  size_t ops, keys, clients, unknown;
  int verdict, gen_verdict;
  double check_s, gen_check_s;
  long rss_kb, gen_rss_kb;
  size_t shown;
  int64_t stale_id, failing_op;
};

const char* VerdictName(int v) {
  return v == 0 ? "linearizable" : v == 1 ? "NOT lin." : "inconcl.";
}

// The checker on a recorded history next to a generated one with as many ops, keys and clients
// and as large a share of unknown writes, each timed in its own child.
int CheckRecorded(const std::string& file, double stale, const std::string& label) {
  controller::etcd::History h;
  {
    std::ifstream in(file);
    if (!in) {
      std::fprintf(stderr, "verify_bench: cannot open %s\n", file.c_str());
      return 2;
    }
    h = controller::etcd::LoadJsonl(in);
  }
  CheckRow row{};
  row.stale_id = stale >= 0 ? bench::MakeStaleRead(&h, stale) : -1;
  if (stale >= 0 && row.stale_id < 0) {
    std::fprintf(stderr, "verify_bench: no read of %s fits a stale read\n", file.c_str());
    return 1;
  }
  std::set<std::string> keys;
  std::set<int> clients;
  size_t writes = 0;
  for (const auto& op : h.ops) {
    keys.insert(op.key);
    clients.insert(op.client);
    if (op.type != controller::etcd::OpType::kGet) {
      ++writes;
      row.unknown += op.outcome == controller::etcd::Outcome::kUnknown;
    }
  }
  row.ops = h.ops.size();
  row.keys = keys.size();
  row.clients = clients.size();
  struct One {
    int verdict;
    double s;
    long rss_kb;
    size_t shown;
    int64_t failing;
  };
  auto time_check = [](const controller::etcd::History& hist) {
    auto t0 = Clock::now();
    auto r = controller::etcd::CheckLinearizability(hist);
    One o{static_cast<int>(r.verdict), Seconds(t0, Clock::now()), MaxRssKb(),
          r.failures.empty() ? size_t{0} : r.failures[0].prefix_ops,
          r.failures.empty() ? int64_t{-1} : r.failures[0].failing_op};
    return o;
  };
  One rec{}, gen{};
  if (!Isolated([&] { return time_check(h); }, &rec)) return 1;
  bench::GenOptions g;
  g.ops = static_cast<int64_t>(row.ops);
  g.keys = static_cast<int>(row.keys);
  g.clients = static_cast<int>(row.clients);
  g.unknown_fraction = writes == 0 ? 0 : double(row.unknown) / double(writes);
  g.stale_read_at = stale;
  g.seed = row.ops;
  h = {};
  if (!Isolated([&] { return time_check(bench::Generate(g)); }, &gen)) return 1;
  std::printf("| %s | %zu | %zu | %zu | %zu | %s | %.3f | %.0f | %s | %.3f | %.1fx | %s |\n",
              label.c_str(), row.ops, row.keys, row.clients, row.unknown, VerdictName(rec.verdict),
              rec.s, rec.rss_kb / 1024.0,
              rec.verdict == 1 ? (std::to_string(rec.shown) +
                                  (rec.failing == row.stale_id ? " (the stale read)" : " (?)"))
                                     .c_str()
                               : "-",
              gen.s, rec.s / std::max(gen.s, 1e-9), VerdictName(gen.verdict));
  std::fflush(stdout);
  return 0;
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
    const char* verdict = r.verdict == 0   ? "linearizable"
                          : r.verdict == 1 ? "NOT lin."
                                           : "inconcl.";
    std::printf(
        "| %lld | %d | %d | %s | %s | %.3f | %.3f | %.1fx | %llu | %llu | %.0f (%.0f) | %s |\n",
        static_cast<long long>(c.ops), c.keys, c.clients, history.c_str(), verdict, r.check_s,
        r.baseline_s, r.check_s / std::max(r.baseline_s, 1e-9),
        static_cast<unsigned long long>(r.steps), static_cast<unsigned long long>(r.memo),
        r.rss_peak_kb / 1024.0, r.rss_before_kb / 1024.0,
        r.prefix_ops ? std::to_string(r.prefix_ops).c_str() : "-");
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string write_to, record_to, check_file, endpoints, label;
  double seconds = 10, rate = 0, stale = -1;
  bench::GenOptions g;
  bool quick = false;
  std::vector<Case> only;
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
      stale = g.stale_read_at = std::stod(next());
    else if (a == "--record")
      record_to = next();
    else if (a == "--check")
      check_file = next();
    else if (a == "--endpoints")
      endpoints = next();
    else if (a == "--seconds")
      seconds = std::stod(next());
    else if (a == "--rate")
      rate = std::stod(next());
    else if (a == "--label")
      label = next();
    else if (a == "--unknown")  // for --write and the --case rows after it
      g.unknown_fraction = std::stod(next());
    else if (a == "--seed")
      g.seed = std::stoull(next());
    else if (a == "--quick")
      quick = true;
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
    if (endpoints.empty()) {
      std::fprintf(stderr, "verify_bench: --record needs --endpoints\n");
      return 2;
    }
    return Record(record_to, endpoints, g.clients, g.keys, seconds, rate);
  }
  if (!check_file.empty())
    return CheckRecorded(check_file, stale, label.empty() ? check_file : label);
  if (!write_to.empty()) {
    std::ofstream out(write_to);
    controller::etcd::SaveJsonl(bench::Generate(g), out);
    return out ? 0 : 1;
  }
  return Table(quick, only);
}
