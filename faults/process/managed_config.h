#pragma once

// What the agent is told to supervise: the managed-process config (the agent's
// --managed-config FILE) and its parsed form.
//
// Config file format (the agent's --managed-config FILE), JSON:
//
//   {
//     "processes": [
//       {
//         "name": "etcd",                          // required, [A-Za-z0-9_.-]+, unique
//         "argv": ["/usr/bin/etcd", "--name", "e1"],  // required; argv[0] is an absolute path
//         "env": {"GOMAXPROCS": "1"},              // added to the agent's environment
//         "cwd": "/var/lib/etcd",                  // default "/"
//         "netns": "/run/netns/lab-e1",            // setns(CLONE_NEWNET) before exec; optional
//         "log": "/var/log/etcd.log",              // stdout+stderr, appended; default /dev/null
//         "overlay": "/var/lib/etcd",              // FUSE overlay mounted first (IO faults)
//         "syscalls": ["fdatasync", "fsync"],      // routed to the agent (syscall faults)
//         "restart": "on-failure",                 // never | on-failure | always (default never)
//         "backoff": "200ms", "max_backoff": "10s",  // restart delay, doubling up to the max
//         "stop_signal": 15, "stop_grace": "10s",  // how Stop() ends it before SIGKILL
//         "ready": {                               // readiness probe, at most one kind
//           "tcp": "10.0.0.2:2379",                //   TCP connect succeeds, or
//           "http": "http://10.0.0.2:2379/health", //   GET answers 2xx, or
//           "command": ["/bin/true"],              //   the command exits 0
//           "interval": "100ms", "timeout": "30s"
//         }
//       }
//     ]
//   }
//
// Probes run in the process's network namespace, so a loopback address means its loopback.
// A bare top-level array of process objects is accepted too.

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace faultline::faults::process {

enum class RestartPolicy { kNever, kOnFailure, kAlways };
// The policy as the config spells it: "never", "on-failure" or "always".
const char* ToString(RestartPolicy p);

struct ReadinessProbe {
  enum class Kind { kNone, kTcp, kHttp, kCommand };
  Kind kind = Kind::kNone;
  std::string host;  // tcp and http
  int port = 0;
  std::string path = "/";  // http
  std::string url;         // http, as written
  std::vector<std::string> command;
  std::chrono::nanoseconds interval = std::chrono::milliseconds(100);
  std::chrono::nanoseconds timeout = std::chrono::seconds(30);
};

struct ManagedSpec {
  std::string name;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string cwd = "/";
  std::string netns;  // path of a network namespace file, e.g. /run/netns/NAME
  std::string log;    // empty: /dev/null
  // A directory the agent covers with its FUSE overlay before starting the process (IO faults
  // act through it), e.g. etcd's data dir. Absolute; optional.
  std::string overlay;
  // Syscalls to route through a seccomp user-notification filter (faultline-seccomp-exec, keeper
  // mode) so syscall faults can act on them, e.g. ["fdatasync", "fsync"]. Optional.
  std::vector<std::string> syscalls;
  RestartPolicy restart = RestartPolicy::kNever;
  std::chrono::nanoseconds backoff = std::chrono::milliseconds(200);
  std::chrono::nanoseconds max_backoff = std::chrono::seconds(10);
  int stop_signal = 15;
  std::chrono::nanoseconds stop_grace = std::chrono::seconds(10);
  ReadinessProbe ready;
};

// Parses the config format above. Throws ValidationError naming every bad field
// ("processes[1].argv: must not be empty") at once.
std::vector<ManagedSpec> ParseManagedConfig(std::string_view json_text);
// The inverse of ParseManagedConfig (what the lab writes for its agents).
std::string ManagedConfigToJson(const std::vector<ManagedSpec>& specs);

}  // namespace faultline::faults::process
