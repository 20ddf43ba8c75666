// Idle overlay vs native directory on the real disk, measured in the same run with the two
// variants interleaved (A B A B ...) so load from other processes hits both alike. Prints
// Markdown for bench/RESULTS.md. Needs root (FUSE mount) and /usr/bin/etcd for the put test.
//
//   io_overlay_bench [--dir /var/tmp/x] [--rounds 3] [--skip-etcd | --only-etcd] [--xattr]
// --xattr mounts the overlay with extended attributes on (Overlay::Options::xattr), as it was
// before they became opt-in: every buffered write then costs a GETXATTR round trip more.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "faults/io/overlay.h"
#include "tests/support/subprocess.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using faultline::faults::io::Overlay;
using faultline::faults::io::RuleSpec;

namespace {

double Secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double Pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void Die(const std::string& what) {
  fprintf(stderr, "%s: %s\n", what.c_str(), strerror(errno));
  exit(1);
}

// (a) 4 KiB pwrite + fdatasync, appending, for `seconds`; returns ops done. `fd` stays open
// across slices so both variants keep appending to one file each.
long FsyncSlice(int fd, long* offset, double seconds) {
  char buf[4096];
  memset(buf, 'w', sizeof(buf));
  auto t0 = Clock::now();
  long ops = 0;
  while (Secs(Clock::now() - t0) < seconds) {
    if (::pwrite(fd, buf, sizeof(buf), *offset) != 4096) Die("pwrite");
    if (::fdatasync(fd) != 0) Die("fdatasync");
    *offset += 4096;
    ++ops;
  }
  return ops;
}

// (b) sequential read of `path` with 1 MiB reads; MB/s.
double SeqRead(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) Die("open " + path.string());
  std::vector<char> buf(1 << 20);
  auto t0 = Clock::now();
  size_t total = 0;
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) total += static_cast<size_t>(n);
  double s = Secs(Clock::now() - t0);
  ::close(fd);
  return static_cast<double>(total) / 1e6 / s;
}

void DropCache(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// --- etcd put throughput through the grpc-gateway (HTTP/JSON), keep-alive connections ---

int Connect(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(s);
    return -1;
  }
  int one = 1;
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return s;
}

// One POST /v3/kv/put; true on HTTP 200.
bool Put(int s, const std::string& body) {
  std::string req =
      "POST /v3/kv/put HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  if (::send(s, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return false;
  std::string resp;
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(s, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    resp.append(buf, static_cast<size_t>(n));
    size_t hdr = resp.find("\r\n\r\n");
    if (hdr == std::string::npos) continue;
    size_t cl = resp.find("Content-Length: ");
    if (cl == std::string::npos || cl > hdr) {
      // grpc-gateway may answer chunked; the body ends with "0\r\n\r\n".
      if (resp.size() >= 5 && resp.compare(resp.size() - 5, 5, "0\r\n\r\n") == 0) break;
      continue;
    }
    size_t len = std::stoul(resp.substr(cl + 16));
    if (resp.size() >= hdr + 4 + len) break;
  }
  return resp.compare(0, 12, "HTTP/1.1 200") == 0;
}

std::string B64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
  }
  return out;
}

using faultline::testing::FreePort;

struct Etcd {
  pid_t pid = -1;
  int port = 0;
  fs::path data;
};

// Starts etcd with its data dir at `data` and waits until a put succeeds.
Etcd StartEtcd(const fs::path& data) {
  Etcd e;
  e.data = data;
  fs::create_directories(data);
  fs::permissions(data, fs::perms::owner_all);
  e.port = FreePort();
  int pport = FreePort();
  std::string client = "http://127.0.0.1:" + std::to_string(e.port);
  std::string peer = "http://127.0.0.1:" + std::to_string(pport);
  e.pid = ::fork();
  if (e.pid == 0) {
    int log = ::open(
        (data.parent_path().parent_path() / (data.parent_path().filename().string() + "-etcd.log"))
            .c_str(),
        O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    std::string cl = "m1=" + peer;
    ::execl("/usr/bin/etcd", "etcd", "--name", "m1", "--data-dir", data.c_str(),
            "--listen-client-urls", client.c_str(), "--advertise-client-urls", client.c_str(),
            "--listen-peer-urls", peer.c_str(), "--initial-advertise-peer-urls", peer.c_str(),
            "--initial-cluster", cl.c_str(), nullptr);
    ::_exit(127);
  }
  bool ready = false;
  for (int i = 0; i < 300 && !ready; ++i) {
    int s = Connect(e.port);
    if (s >= 0) {
      ready = Put(s, R"({"key":")" + B64("ready") + R"(","value":")" + B64("1") + "\"}");
      ::close(s);
    }
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!ready) {
    ::kill(e.pid, SIGKILL);
    ::waitpid(e.pid, nullptr, 0);
    fprintf(stderr, "etcd did not start on %s\n", data.c_str());
    exit(1);
  }
  return e;
}

void StopEtcd(Etcd& e) {
  ::kill(e.pid, SIGTERM);
  ::waitpid(e.pid, nullptr, 0);
  fs::remove_all(e.data);
}

// `clients` keep-alive connections putting 256-byte values (1000 keys each) for `seconds`;
// returns puts done.
long EtcdLoad(const Etcd& e, int clients, double seconds) {
  std::atomic<long> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::string value = B64(std::string(256, 'v'));
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      int s = Connect(e.port);
      long i = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        std::string key = B64("key-" + std::to_string(c) + "-" + std::to_string(i++ % 1000));
        if (!Put(s, R"({"key":")" + key + R"(","value":")" + value + "\"}")) break;
        done.fetch_add(1, std::memory_order_relaxed);
      }
      ::close(s);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  return done.load();
}

}  // namespace

int main(int argc, char** argv) {
  fs::path base = "/var/tmp/faultline-io-bench-" + std::to_string(::getpid());
  int rounds = 3;
  bool etcd = true;
  bool only_etcd = false;
  Overlay::Options options;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc)
      base = argv[++i];
    else if (a == "--rounds" && i + 1 < argc)
      rounds = std::stoi(argv[++i]);
    else if (a == "--skip-etcd")
      etcd = false;
    else if (a == "--only-etcd")
      only_etcd = true;
    else if (a == "--xattr")
      options.xattr = true;
  }
  fs::path native = base / "native", over = base / "overlay";
  fs::create_directories(native);
  fs::create_directories(over);
  // The real directory under the overlay, for dropping the backing file's cache.
  int under = ::open(over.c_str(), O_PATH | O_DIRECTORY);
  std::unique_ptr<Overlay> overlay = std::make_unique<Overlay>(over, options);

  printf("| measure | native | overlay | ratio |\n|---|---|---|---|\n");
  auto row = [](const char* what, std::vector<double> n, std::vector<double> o, const char* unit) {
    double mn = Median(n), mo = Median(o);
    printf("| %s | %.1f %s | %.1f %s | %.3f |\n", what, mn, unit, mo, unit, mo / mn);
    fflush(stdout);
  };

  if (!only_etcd) {
    // (a) Alternating 250 ms slices: the disk here is shared, and its speed drifts by 5x within
    // seconds, so only slices interleaved this finely see the same conditions.
    {
      int nfd = ::open((native / "fsync.dat").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int ofd = ::open((over / "fsync.dat").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (nfd < 0 || ofd < 0) Die("open fsync.dat");
      long noff = 0, ooff = 0, nops = 0, oops = 0;
      std::vector<double> ratios;
      for (int i = 0; i < 16 * rounds; ++i) {
        long a, b;
        if (i % 2 == 0) {
          a = FsyncSlice(nfd, &noff, 0.25);
          b = FsyncSlice(ofd, &ooff, 0.25);
        } else {
          b = FsyncSlice(ofd, &ooff, 0.25);
          a = FsyncSlice(nfd, &noff, 0.25);
        }
        nops += a;
        oops += b;
        if (a > 0) ratios.push_back(static_cast<double>(b) / static_cast<double>(a));
      }
      double secs = 0.25 * 16 * rounds;
      printf(
          "| 4 KiB write+fdatasync loop (%d x 250 ms slices each) | %.1f ops/s | %.1f ops/s | %.3f "
          "(median of paired slices %.3f) |\n",
          16 * rounds, static_cast<double>(nops) / secs, static_cast<double>(oops) / secs,
          static_cast<double>(oops) / static_cast<double>(nops), Median(ratios));
      fflush(stdout);
      // The same loop alternating op by op: each fdatasync of one variant is followed by one of
      // the other, the fairest pairing this shared disk allows.
      std::vector<double> nlat, olat;
      char buf[4096];
      memset(buf, 'w', sizeof(buf));
      for (int i = 0; i < 400 * rounds; ++i) {
        for (int v = 0; v < 2; ++v) {
          int fd = v == 0 ? nfd : ofd;
          long* off = v == 0 ? &noff : &ooff;
          auto t0 = Clock::now();
          if (::pwrite(fd, buf, sizeof(buf), *off) != 4096 || ::fdatasync(fd) != 0) Die("loop");
          *off += 4096;
          (v == 0 ? nlat : olat).push_back(Secs(Clock::now() - t0) * 1e3);
        }
      }
      double nsum = 0, osum = 0;
      for (double x : nlat) nsum += x;
      for (double x : olat) osum += x;
      printf(
          "| 4 KiB write+fdatasync, alternating op by op (%zu ops each) | %.1f ops/s (p50 %.2f ms) "
          "| %.1f ops/s (p50 %.2f ms) | %.3f |\n",
          nlat.size(), 1e3 * static_cast<double>(nlat.size()) / nsum, Pct(nlat, 50),
          1e3 * static_cast<double>(olat.size()) / osum, Pct(olat, 50), nsum / osum);
      fflush(stdout);
      // One op alternating native / overlay, n each, as a p50/p99 row in microseconds.
      auto alternating_us = [&](const char* what, int n, auto op) {
        std::vector<double> lat[2];
        for (int i = 0; i < n; ++i) {
          for (int v = 0; v < 2; ++v) {
            auto t0 = Clock::now();
            op(v == 0 ? nfd : ofd);
            lat[v].push_back(Secs(Clock::now() - t0) * 1e6);
          }
        }
        const auto& [nl, ol] = lat;
        printf(
            "| %s, alternating (%zu ops each) | p50 %.1f us, p99 %.1f us | p50 %.1f us, p99 %.1f "
            "us | %.3f (p50) |\n",
            what, nl.size(), Pct(nl, 50), Pct(nl, 99), Pct(ol, 50), Pct(ol, 99),
            Pct(nl, 50) / Pct(ol, 50));
        fflush(stdout);
      };
      // The round trip alone: the same 4 KiB overwritten in the page cache, no sync, so the disk
      // (whose speed drifts) is out of the measure and what is left is one FUSE WRITE.
      alternating_us("4 KiB overwrite, no sync", 5000 * rounds, [&](int fd) {
        if (::pwrite(fd, buf, sizeof(buf), 0) != 4096) Die("pwrite");
      });
      // And one FSYNC round trip: fdatasync of a file with nothing left to write (after one
      // sync of the overwrites above), so neither side waits for the disk.
      if (::fdatasync(nfd) != 0 || ::fdatasync(ofd) != 0) Die("fdatasync");
      alternating_us("fdatasync with nothing to write", 5000 * rounds, [&](int fd) {
        if (::fdatasync(fd) != 0) Die("fdatasync");
      });
      // What handing the sync to another thread costs with no FUSE at all: the native
      // write+fdatasync against the same with the fdatasync done by a helper thread that the
      // caller wakes through a pipe and waits for on another (the hops an overlay's FSYNC adds).
      int req[2], resp[2];
      if (::pipe(req) != 0 || ::pipe(resp) != 0) Die("pipe");
      std::thread helper([&] {
        char c;
        while (::read(req[0], &c, 1) == 1) {
          char r = ::fdatasync(nfd) == 0 ? 'k' : 'e';
          if (::write(resp[1], &r, 1) != 1) break;
        }
      });
      std::vector<double> direct, handed;
      for (int i = 0; i < 400 * rounds; ++i) {
        for (int v = 0; v < 2; ++v) {
          auto t0 = Clock::now();
          if (::pwrite(nfd, buf, sizeof(buf), noff) != 4096) Die("pwrite");
          noff += 4096;
          if (v == 0) {
            if (::fdatasync(nfd) != 0) Die("fdatasync");
          } else {
            char c = 's', r = 0;
            if (::write(req[1], &c, 1) != 1 || ::read(resp[0], &r, 1) != 1 || r != 'k') {
              Die("handed-off fdatasync");
            }
          }
          (v == 0 ? direct : handed).push_back(Secs(Clock::now() - t0) * 1e6);
        }
      }
      ::close(req[1]);
      helper.join();
      for (int fd : {req[0], resp[0], resp[1]}) ::close(fd);
      printf(
          "| native 4 KiB write+fdatasync: direct vs fdatasync handed to a thread (%zu ops "
          "each) | p50 %.1f us | p50 %.1f us | %.3f (p50) |\n",
          direct.size(), Pct(direct, 50), Pct(handed, 50), Pct(direct, 50) / Pct(handed, 50));
      fflush(stdout);
      ::close(nfd);
      ::close(ofd);
    }

    // (b) 256 MiB file written once per variant.
    std::vector<char> chunk(1 << 20, 'r');
    for (const auto& d : {native, over}) {
      int fd = ::open((d / "seq.dat").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      for (int i = 0; i < 256; ++i) {
        if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size()))
          Die("write");
      }
      ::fsync(fd);
      ::close(fd);
    }
    std::vector<double> cn, co, hn, ho;
    for (int r = 0; r < rounds; ++r) {
      // Cold: drop the overlay's page cache and the real file's under it.
      DropCache(native / "seq.dat");
      cn.push_back(SeqRead(native / "seq.dat"));
      DropCache(over / "seq.dat");                      // the overlay's own pages
      int real = ::openat(under, "seq.dat", O_RDONLY);  // and the backing file's, underneath
      ::posix_fadvise(real, 0, 0, POSIX_FADV_DONTNEED);
      ::close(real);
      co.push_back(SeqRead(over / "seq.dat"));
      hn.push_back(SeqRead(native / "seq.dat"));
      ho.push_back(SeqRead(over / "seq.dat"));
    }
    row("sequential read 256 MiB, cold", cn, co, "MB/s");
    row("sequential read 256 MiB, cached", hn, ho, "MB/s");

  }  // !only_etcd

  // (c) Both members run at once; the load alternates between them in 1 s slices.
  if (etcd && ::access("/usr/bin/etcd", X_OK) == 0) {
    Etcd en = StartEtcd(native / "etcd" / "data");
    Etcd eo = StartEtcd(over / "etcd" / "data");
    long pn = 0, po = 0;
    std::vector<double> ratios;
    for (int i = 0; i < 5 * rounds; ++i) {
      // ABBA order: whatever one slice leaves behind (writeback, compaction) lands on both.
      long a, b;
      if (i % 2 == 0) {
        a = EtcdLoad(en, 16, 1.0);
        b = EtcdLoad(eo, 16, 1.0);
      } else {
        b = EtcdLoad(eo, 16, 1.0);
        a = EtcdLoad(en, 16, 1.0);
      }
      pn += a;
      po += b;
      if (a > 0) ratios.push_back(static_cast<double>(b) / static_cast<double>(a));
    }
    StopEtcd(en);
    StopEtcd(eo);
    double secs = 5.0 * rounds;
    printf(
        "| etcd puts, 16 clients via grpc-gateway (%d x 1 s slices each) | %.1f puts/s | %.1f "
        "puts/s | %.3f (median of paired slices %.3f) |\n",
        5 * rounds, static_cast<double>(pn) / secs, static_cast<double>(po) / secs,
        static_cast<double>(po) / static_cast<double>(pn), Median(ratios));
    fflush(stdout);
  }

  // Latency injection error: fdatasync with a fixed delay, seen by the caller.
  if (!only_etcd) {
    printf(
        "\n| configured fdatasync delay | samples | measured p50 | measured p99 | p50 error | p99 "
        "error |\n"
        "|---|---|---|---|---|---|\n");
    {
      int fd = ::open((over / "lat.dat").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      char buf[4096] = {};
      std::vector<double> base_ms;
      for (int i = 0; i < 100; ++i) {
        ::pwrite(fd, buf, sizeof(buf), 0);
        auto t0 = Clock::now();
        ::fdatasync(fd);
        base_ms.push_back(Secs(Clock::now() - t0) * 1e3);
      }
      printf("| 0 (no rule) | 100 | %.2f ms | %.2f ms | - | - |\n", Pct(base_ms, 50),
             Pct(base_ms, 99));
      for (int delay_ms : {10, 100}) {
        RuleSpec s;
        s.kind = faultline::faults::io::RuleKind::kLatency;
        s.path_glob = "lat.dat";
        s.methods = faultline::faults::io::Bit(faultline::faults::io::Method::kFdatasync);
        s.delay = std::chrono::milliseconds(delay_ms);
        auto rule = overlay->Arm(s);
        int n = delay_ms == 10 ? 200 : 50;
        std::vector<double> ms;
        for (int i = 0; i < n; ++i) {
          ::pwrite(fd, buf, sizeof(buf), 0);
          auto t0 = Clock::now();
          ::fdatasync(fd);
          ms.push_back(Secs(Clock::now() - t0) * 1e3);
        }
        overlay->Disarm(rule->id());
        printf("| %d ms | %d | %.2f ms | %.2f ms | %+.2f ms | %+.2f ms |\n", delay_ms, n,
               Pct(ms, 50), Pct(ms, 99), Pct(ms, 50) - delay_ms, Pct(ms, 99) - delay_ms);
      }
      ::close(fd);
    }
  }  // !only_etcd
  overlay.reset();
  fs::remove_all(base);
  return 0;
}
