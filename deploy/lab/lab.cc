#include "deploy/lab/lab.h"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "deploy/lab/etcd_versions.h"
#include "deploy/lab/subnet.h"
#include "faults/core/errors.h"
#include "faults/core/rng.h"
#include "faults/process/managed.h"
#include "faults/process/proc.h"
#include "faults/sys/mountinfo.h"
#include "faults/sys/netns.h"
#include "faults/sys/rtnl.h"
#include "faults/sys/unique_fd.h"

namespace faultline::lab {
namespace {

namespace fs = std::filesystem;
using faults::FaultError;
using faults::process::ManagedProcess;
using faults::process::ManagedSpec;
using faults::process::ReadinessProbe;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kMaxMembers = 9;  // link names have room for one digit

fs::path RootOr(const fs::path& root) { return root.empty() ? DefaultRoot() : root; }

std::string Tag(const std::string& lab) {
  char buf[16];
  snprintf(buf, sizeof(buf), "%06llx",
           static_cast<unsigned long long>(faults::StableHash(lab) & 0xffffff));
  return buf;
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAtomic(const fs::path& p, const std::string& text) {
  fs::path tmp = p;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw FaultError("cannot write " + tmp.string());
  }
  fs::rename(tmp, p);
}

void Save(const LabInfo& info) { WriteAtomic(fs::path(info.dir) / "lab.json", ToJson(info)); }

std::string Tail(const std::string& path, size_t lines) {
  std::string text = Slurp(path);
  size_t pos = text.size();
  for (size_t n = 0; n <= lines && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
  }
  return text.substr(pos);
}

std::string SelfDir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : exe.parent_path().string();
}

// A faultline binary: `given` if set (it must support the flag `needs`), else the first of the
// usual places (next to the running binary, the build tree, /usr/sbin) that does; "" if none.
// `option` and `too_old` word the error about a given binary.
std::string FindTool(const std::string& given, const std::string& file, const std::string& subdir,
                     const std::string& needs, const std::string& option,
                     const std::string& too_old) {
  std::vector<std::string> candidates;
  if (!given.empty()) {
    candidates.push_back(given);
  } else {
    std::string self = SelfDir();
    if (!self.empty()) {
      candidates.push_back(self + "/" + file);
      candidates.push_back(self + "/../" + subdir + "/" + file);
    }
    candidates.push_back("/usr/sbin/" + file);
    candidates.push_back("/usr/local/sbin/" + file);
  }
  // A binary that is there but did not answer (killed at the deadline, or by a signal) is not
  // "absent": on a host loaded enough to stall a --help for 30 s the lab would otherwise come up
  // quietly without agents, and every later inject would fail far from the cause.
  std::vector<std::string> unanswered;
  for (const auto& c : candidates) {
    if (::access(c.c_str(), X_OK) != 0) continue;
    auto help = RunCommand({c, "--help"}, std::chrono::seconds(30));
    if (help.out.find(needs) != std::string::npos) return fs::weakly_canonical(c).string();
    if (help.exit_code < 0) {
      unanswered.push_back(c);
      continue;
    }
    if (!given.empty()) {
      throw faults::ValidationError(
          {{option, c + " does not support " + needs + " (" + too_old + ")"}});
    }
  }
  if (!unanswered.empty()) {
    throw faults::ValidationError(
        {{option, unanswered.front() +
                      " did not answer `--help` within 30 s (killed or stuck; is the host "
                      "overloaded?); give a working one with " +
                      option}});
  }
  if (!given.empty())
    throw faults::ValidationError({{option, given + " is not an executable file"}});
  return "";
}

// The agent binary to use, or "" if none that can supervise etcd (--managed-config) is found.
std::string FindAgent(const LabOptions& o) {
  return FindTool(o.agent, "faultline-agent", "agent", "--managed-config", "--agent-binary",
                  "too old to supervise etcd");
}

std::string FindController(const LabOptions& o) {
  return FindTool(o.controller, "faultline-controller", "controller", "--metrics-listen",
                  "--controller-binary", "too old for the lab");
}

ManagedSpec EtcdSpec(const LabInfo& info, const MemberInfo& m, const std::string& cluster) {
  ManagedSpec s;
  s.name = "etcd";
  s.argv = {info.etcd,
            "--name",
            m.name,
            "--data-dir",
            m.data_dir,
            "--listen-client-urls",
            m.client_url + ",http://127.0.0.1:2379",
            "--advertise-client-urls",
            m.client_url,
            "--listen-peer-urls",
            m.peer_url,
            "--initial-advertise-peer-urls",
            m.peer_url,
            "--initial-cluster",
            cluster,
            "--initial-cluster-token",
            "faultline-lab-" + info.name,
            "--initial-cluster-state",
            "new",
            "--logger",
            "zap",
            "--log-outputs",
            "stderr"};
  for (const auto& [name, value] : info.etcd_flags) s.argv.push_back("--" + name + "=" + value);
  s.cwd = m.dir;
  s.netns = sys::NetNs::PathOf(m.netns);
  s.log = m.dir + "/etcd.log";
  // No automatic restart: a kill fault must leave etcd down until the agent is told otherwise.
  s.restart = faults::process::RestartPolicy::kNever;
  s.ready.kind = ReadinessProbe::Kind::kHttp;
  s.ready.url = m.client_url + "/health";
  s.ready.host = m.address;
  s.ready.port = 2379;
  s.ready.path = "/health";
  s.ready.timeout = std::chrono::seconds(60);
  return s;
}

// Ready once the gRPC server has bound its unix socket.
ReadinessProbe SocketReady(const std::string& socket) {
  ReadinessProbe r;
  r.kind = ReadinessProbe::Kind::kCommand;
  r.command = {"/usr/bin/test", "-S", socket};
  r.interval = std::chrono::milliseconds(20);
  r.timeout = std::chrono::seconds(20);
  return r;
}

ManagedSpec AgentSpec(const LabInfo& info, const MemberInfo& m) {
  ManagedSpec s;
  s.name = "agent";
  s.argv = {info.agent, "--listen", "unix://" + m.agent_socket, "--state-dir", m.dir + "/agent",
            "--label", "member=" + m.name, "--label", "app=etcd", "--label", "lab=" + info.name,
            // Every member's data dir differs: an IO fault names its overlay as
            // mount: "${label:data-dir}" (the runner fills it per agent).
            "--label", "data-dir=" + m.data_dir, "--managed-config", m.dir + "/managed.json"};
  s.cwd = m.dir;
  s.netns = sys::NetNs::PathOf(m.netns);
  s.log = m.dir + "/agent.log";
  s.ready = SocketReady(m.agent_socket);
  return s;
}

ManagedSpec ControllerSpec(const LabInfo& info) {
  const ControllerInfo& c = info.controller;
  std::string agents;
  for (const auto& m : info.members) {
    agents += (agents.empty() ? "unix://" : ",unix://") + m.agent_socket;
  }
  ManagedSpec s;
  s.name = "controller";
  // `lab down` finds the controller by "--listen unix://DIR/controller.sock" when the
  // description is gone.
  s.argv = {c.binary,    "--listen",         c.Address(),      "--state-dir",
            c.state_dir, "--etcd-endpoints", info.Endpoints(), "--agents",
            agents,      "--metrics-listen", c.metrics_listen};
  s.cwd = info.dir;
  s.log = info.dir + "/controller.log";
  s.ready = SocketReady(c.socket);
  return s;
}

// Controllers of the lab in `dir`: the recorded one if it still runs, and any process started
// with its --listen argument (a controller started after the description was last written).
std::vector<std::pair<pid_t, uint64_t>> LabControllers(const fs::path& dir,
                                                       const std::optional<LabInfo>& info) {
  std::vector<std::pair<pid_t, uint64_t>> out;
  if (info && info->controller.pid > 0 &&
      faults::process::SameProcess(info->controller.pid, info->controller.start_time)) {
    out.push_back({info->controller.pid, info->controller.start_time});
  }
  const std::string arg = "--listen unix://" + (dir / "controller.sock").string();
  pid_t self = ::getpid();
  for (pid_t pid : faults::process::ListPids()) {
    if (pid == self) continue;
    auto p = faults::process::ReadProc(pid);
    if (!p || p->state == 'Z') continue;
    auto at = p->cmdline.find(arg);
    if (at == std::string::npos) continue;
    size_t end = at + arg.size();
    if (end != p->cmdline.size() && p->cmdline[end] != ' ') continue;
    if (std::find_if(out.begin(), out.end(), [&](auto& e) { return e.first == pid; }) ==
        out.end()) {
      out.push_back({pid, p->start_time});
    }
  }
  return out;
}

// Pids whose network namespace is one of `inodes`.
std::vector<pid_t> PidsInNamespaces(const std::set<unsigned long>& inodes) {
  std::vector<pid_t> out;
  if (inodes.empty()) return out;
  pid_t self = ::getpid();
  for (pid_t pid : faults::process::ListPids()) {
    if (pid == self) continue;
    struct stat st;
    std::string p = "/proc/" + std::to_string(pid) + "/ns/net";
    if (::stat(p.c_str(), &st) == 0 && inodes.count(st.st_ino)) out.push_back(pid);
  }
  return out;
}

std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& m : sys::ReadMountInfo()) {
    const std::string& point = m.mount_point;
    if (point == dir || point.starts_with(dir + "/")) out.push_back(point);
  }
  // Deepest first, so a mount on top of another comes off first.
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  return out;
}

std::vector<std::string> LabNamespaces(const std::string& lab) {
  std::vector<std::string> out;
  std::regex re("fl-" + lab + "-e[0-9]+");
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/run/netns", ec)) {
    std::string n = e.path().filename().string();
    if (std::regex_match(n, re)) out.push_back(n);
  }
  return out;
}

bool WaitGone(const std::vector<std::pair<pid_t, uint64_t>>& procs,
              std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (true) {
    bool any = false;
    for (const auto& [pid, start] : procs) {
      if (faults::process::SameProcess(pid, start)) {
        auto info = faults::process::ReadProc(pid);
        if (info && info->state != 'Z') any = true;  // a zombie is dead, just not yet reaped
      }
    }
    if (!any) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// SIGTERM (and SIGCONT, so a stopped process can act on it), then SIGKILL for those still
// running after `grace`.
void AskToStop(const std::vector<std::pair<pid_t, uint64_t>>& procs) {
  for (const auto& [pid, start] : procs) {
    ::kill(pid, SIGTERM);
    ::kill(pid, SIGCONT);
  }
}

void AwaitOrKill(const std::vector<std::pair<pid_t, uint64_t>>& procs,
                 std::chrono::milliseconds grace) {
  if (WaitGone(procs, grace)) return;
  for (const auto& [pid, start] : procs) {
    if (faults::process::SameProcess(pid, start)) ::kill(pid, SIGKILL);
  }
}

void StopPolitely(const std::vector<std::pair<pid_t, uint64_t>>& procs,
                  std::chrono::milliseconds grace) {
  AskToStop(procs);
  AwaitOrKill(procs, grace);
}

// ---- the steps of `lab up` ------------------------------------------------------------------

void Say(const LabOptions& o, const std::string& s) {
  if (o.progress) o.progress(s);
}

// What the lab will run, resolved and checked before anything is created.
struct Binaries {
  std::string etcd, etcd_version, agent, controller;
  EtcdFlagChoice flags;
};

Binaries ResolveBinaries(const LabOptions& o) {
  faults::FieldErrors errs;
  if (o.members != 3 && o.members != 5) {
    errs.push_back({"--members", "want 3 or 5, got " + std::to_string(o.members)});
  }
  Binaries b;
  b.etcd = o.etcd;
  if (!o.etcd_version.empty()) {
    if (o.etcd != LabOptions{}.etcd) {
      errs.push_back({"--etcd-version", "give --etcd or --etcd-version, not both"});
    } else {
      try {
        b.etcd = FindEtcd(o.etcd_version).binary;
      } catch (const std::invalid_argument& e) {
        std::string why = e.what();
        errs.push_back({"--etcd-version", why.substr(why.find(": ") + 2)});
      }
    }
  }
  if (::access(b.etcd.c_str(), X_OK) != 0) {
    errs.push_back({"--etcd", b.etcd + " is not an executable file"});
  }
  if (!errs.empty()) throw faults::ValidationError(errs);
  b.etcd_version = BinaryEtcdVersion(b.etcd).ToString();
  // Flags are checked against this very binary: a refused one fails `lab up` before anything
  // exists, an experimental one this version lacks is left out (and recorded).
  b.flags = ChooseEtcdFlags(
      o.etcd_flags,
      [&](const std::string& n, const std::string& v) { return EtcdAcceptsFlag(b.etcd, n, v); },
      b.etcd_version);
  b.agent = o.no_agents ? "" : FindAgent(o);
  // A lab asked for agents that comes up without them fails later and far from the cause (a
  // reproduce run said only "agent unix:// does not answer" while the agent was being relinked).
  if (!o.no_agents && b.agent.empty()) {
    throw faults::ValidationError(
        {{"--agent-binary",
          "no faultline-agent next to this binary (" + SelfDir() +
              ", ../agent) or in /usr/sbin or /usr/local/sbin; give one with --agent-binary, "
              "or run etcd alone with --no-agents"}});
  }
  // A controller drives agents; without them there is nothing for it to do.
  b.controller = b.agent.empty() || o.no_controller ? "" : FindController(o);
  for (const auto& d : b.flags.dropped) {
    Say(o, "etcd " + b.etcd_version + " has no --" + d + ": left out");
  }
  if (!b.agent.empty() && !o.no_controller && b.controller.empty()) {
    Say(o, "no faultline-controller next to this binary or in /usr/sbin: the lab runs without one");
  }
  return b;
}

// Refuses a name whose directory, namespaces or bridge exist, then claims it: mkdir is atomic,
// so of two concurrent `lab up` with one name, one fails here.
void ClaimName(const LabOptions& o, const fs::path& root, const fs::path& dir) {
  std::string refuse = "lab \"" + o.name + "\" already exists";
  std::string hint = "; `faultline lab down --name " + o.name + "` removes it";
  if (fs::exists(dir)) throw FaultError(refuse + " (" + dir.string() + ")" + hint);
  for (int i = 1; i <= o.members; ++i) {
    if (sys::NetNs::Exists(NetnsName(o.name, i))) {
      throw FaultError(refuse + " (namespace " + NetnsName(o.name, i) + " is left over)" + hint);
    }
  }
  if (sys::Rtnl().IfIndex(BridgeName(o.name)) != 0) {
    throw FaultError(refuse + " (link " + BridgeName(o.name) + " is left over)" + hint);
  }
  fs::create_directories(root);
  if (::mkdir(dir.c_str(), 0755) != 0) {
    if (errno == EEXIST) throw FaultError(refuse + " (" + dir.string() + ")" + hint);
    faults::ThrowErrno("mkdir " + dir.string());
  }
}

// A /24 no route of the host and no other lab uses.
Prefix ChooseSubnet(const LabOptions& o, const fs::path& root, sys::Rtnl& host) {
  std::vector<Prefix> taken = host.UsedPrefixes();
  for (const auto& other : ListLabs(root)) {
    try {
      if (auto p = ParsePrefix(LoadLab(other, root).subnet)) taken.push_back(*p);
    } catch (const std::exception&) {
      // A lab whose description cannot be read claims nothing.
    }
  }
  auto subnet = ChooseLabSubnet(taken, o.name);
  if (!subnet) throw FaultError("no free /24 in 10.213.0.0/16-10.215.0.0/16 for the lab");
  return *subnet;
}

// The description of everything the lab will create: names, addresses, directories.
LabInfo Plan(const LabOptions& o, const fs::path& dir, const Prefix& subnet, const Binaries& b) {
  LabInfo info;
  info.name = o.name;
  info.dir = dir.string();
  info.state = "creating";
  info.subnet = FormatPrefix(subnet);
  info.bridge = BridgeName(o.name);
  info.bridge_address = FormatIpv4(BridgeAddress(subnet));
  if (o.ipv6) {
    info.ipv6 = true;
    info.subnet6 = sys::FormatIp(Ipv6LabNet(subnet)) + "/" + std::to_string(kLabIpv6PrefixLen);
    info.bridge_address6 = sys::FormatIp(Ipv6BridgeAddress(subnet));
  }
  info.etcd = b.etcd;
  info.etcd_version = b.etcd_version;
  info.etcd_flags = b.flags.given;
  info.etcd_flags_dropped = b.flags.dropped;
  info.agent = b.agent;
  info.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  info.creator_pid = ::getpid();
  for (int i = 1; i <= o.members; ++i) {
    MemberInfo m;
    m.name = "e" + std::to_string(i);
    m.netns = NetnsName(o.name, i);
    m.veth = VethName(o.name, i);
    m.address =
        o.ipv6 ? sys::FormatIp(Ipv6MemberAddress(subnet, i)) : FormatIpv4(MemberAddress(subnet, i));
    // An IPv6 address in a URL goes in brackets (RFC 3986).
    const std::string host = o.ipv6 ? "[" + m.address + "]" : m.address;
    m.client_url = "http://" + host + ":2379";
    m.peer_url = "http://" + host + ":2380";
    m.dir = (dir / m.name).string();
    m.data_dir = m.dir + "/etcd";
    if (!b.agent.empty()) m.agent_socket = m.dir + "/agent.sock";
    info.members.push_back(m);
  }
  if (!b.controller.empty()) {
    info.controller.binary = b.controller;
    info.controller.socket = (dir / "controller.sock").string();
    info.controller.state_dir = (dir / "controller").string();
    info.controller.metrics_listen =
        info.bridge_address + ":" + std::to_string(kControllerMetricsPort);
  }
  return info;
}

// etcd's --initial-cluster.
std::string InitialCluster(const LabInfo& info) {
  std::string cluster;
  for (const auto& m : info.members) {
    cluster += (cluster.empty() ? "" : ",") + m.name + "=" + m.peer_url;
  }
  return cluster;
}

// N of member "eN".
int MemberIndex(const MemberInfo& m) { return std::stoi(m.name.substr(1)); }

// Bridge, one namespace per member with a veth into the bridge, and the check that the host's
// route to every member leaves through the bridge (nothing starts otherwise).
void Wire(const LabOptions& o, const LabInfo& info, const Prefix& subnet, sys::Rtnl& host) {
  host.AddBridge(info.bridge);
  host.AddAddress(info.bridge, BridgeAddress(subnet), 24);
  if (info.ipv6) host.AddAddress(info.bridge, Ipv6BridgeAddress(subnet), kLabIpv6PrefixLen);
  host.SetUp(info.bridge);
  Say(o,
      "bridge " + info.bridge + " " + info.bridge_address + "/24" +
          (info.ipv6 ? " " + info.bridge_address6 + "/" + std::to_string(kLabIpv6PrefixLen) : ""));
  for (const auto& m : info.members) {
    fs::create_directories(m.dir);
    sys::NetNs::Create(m.netns).Release();  // from now on `lab down` owns its removal
    sys::UniqueFd nsfd(::open(sys::NetNs::PathOf(m.netns).c_str(), O_RDONLY | O_CLOEXEC));
    if (!nsfd) faults::ThrowErrno("open " + sys::NetNs::PathOf(m.netns));
    host.AddVeth(m.veth, "eth0", nsfd.get());
    host.SetMaster(m.veth, info.bridge);
    host.SetUp(m.veth);
    sys::Rtnl inside(sys::NetNs::PathOf(m.netns));
    inside.SetUp("lo");
    inside.AddAddress("eth0", MemberAddress(subnet, MemberIndex(m)), 24);
    if (info.ipv6) {
      inside.AddAddress("eth0", Ipv6MemberAddress(subnet, MemberIndex(m)), kLabIpv6PrefixLen);
    }
    inside.SetUp("eth0");
    Say(o, m.name + ": netns " + m.netns + ", " + m.veth + " <-> eth0 " + m.address);
  }
  int br = host.IfIndex(info.bridge);
  for (const auto& m : info.members) {
    int oif = sys::RouteOutputIfIndex(*sys::ParseIp(m.address));
    if (oif != br) {
      char name[IF_NAMESIZE] = "?";
      if_indextoname(oif, name);
      throw FaultError("route to " + m.name + " (" + m.address + ") goes out via " + name +
                       ", not the lab bridge " + info.bridge + "; refusing to start");
    }
  }
}

// Each member's etcd, started directly or (with agents) by its agent, which the lab starts and
// waits for; records the pids in the description as they appear.
void StartMembers(const LabOptions& o, LabInfo& info, Clock::time_point deadline) {
  const std::string cluster = InitialCluster(info);
  std::vector<std::unique_ptr<ManagedProcess>> procs;
  for (auto& m : info.members) {
    ManagedSpec etcd = EtcdSpec(info, m, cluster);
    if (info.agent.empty()) {
      procs.push_back(std::make_unique<ManagedProcess>(etcd, m.dir));
      procs.back()->Start();
      m.etcd_pid = procs.back()->Pid();
      m.etcd_start_time = procs.back()->StartTime();
      Say(o, m.name + ": etcd pid " + std::to_string(m.etcd_pid));
    } else {
      if (o.overlay) {
        // The overlay covers the data dir, so it must exist before the agent mounts it.
        std::filesystem::create_directories(m.data_dir);
        etcd.overlay = m.data_dir;
      }
      etcd.syscalls = o.intercept_syscalls;
      WriteAtomic(m.dir + "/managed.json", faults::process::ManagedConfigToJson({etcd}));
      procs.push_back(std::make_unique<ManagedProcess>(AgentSpec(info, m), m.dir));
      procs.back()->Start();
      m.agent_pid = procs.back()->Pid();
      m.agent_start_time = procs.back()->StartTime();
      Say(o, m.name + ": agent pid " + std::to_string(m.agent_pid));
    }
    Save(info);
  }
  if (info.agent.empty()) return;
  for (size_t i = 0; i < procs.size(); ++i) {
    auto left = std::max<Clock::duration>(deadline - Clock::now(), std::chrono::seconds(1));
    if (!procs[i]->WaitReady(left)) {
      throw FaultError(info.members[i].name + ": agent not serving on " +
                       info.members[i].agent_socket + ":\n" +
                       Tail(info.members[i].dir + "/agent.log", 10));
    }
  }
  // The agents start etcd; their managed state files name its pid.
  for (auto& m : info.members) {
    std::ifstream in(m.dir + "/agent/managed/etcd.json");
    json j = json::parse(in, nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
      m.etcd_pid = j.value("pid", 0);
      m.etcd_start_time = j.value("start_time", uint64_t{0});
    }
  }
  Save(info);
}

// Healthy as seen from the host, through the bridge: the path every client will take.
void WaitHealthy(const LabOptions& o, const LabInfo& info, Clock::time_point deadline) {
  const std::string cluster = InitialCluster(info);
  for (const auto& m : info.members) {
    ReadinessProbe health = EtcdSpec(info, m, cluster).ready;
    while (!faults::process::ProbeOnce(health, "")) {
      if (Clock::now() >= deadline) {
        throw FaultError(m.name + ": etcd not healthy at " + health.url + " after " +
                         std::to_string(o.timeout.count()) + "s; last log lines:\n" +
                         Tail(m.dir + "/etcd.log", 10));
      }
      if (m.etcd_pid != 0 && !faults::process::SameProcess(m.etcd_pid, m.etcd_start_time)) {
        throw FaultError(m.name + ": etcd exited during start; last log lines:\n" +
                         Tail(m.dir + "/etcd.log", 10));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    Say(o, m.name + ": etcd healthy at " + m.client_url);
  }
}

void StartController(const LabOptions& o, LabInfo& info, Clock::time_point deadline) {
  ManagedProcess c(ControllerSpec(info), info.dir);
  c.Start();
  info.controller.pid = c.Pid();
  info.controller.start_time = c.StartTime();
  Save(info);
  auto left = std::max<Clock::duration>(deadline - Clock::now(), std::chrono::seconds(5));
  if (!c.WaitReady(left)) {
    throw FaultError("controller not serving on " + info.controller.socket + ":\n" +
                     Tail(info.dir + "/controller.log", 10));
  }
  Say(o, "controller pid " + std::to_string(info.controller.pid) + " on " +
             info.controller.Address() + ", metrics http://" + info.controller.metrics_listen +
             "/metrics");
}

}  // namespace

fs::path DefaultRoot() {
  if (const char* env = std::getenv("FAULTLINE_LAB_ROOT"); env && *env) return env;
  return "/var/lib/faultline/lab";
}

void ValidateLabName(const std::string& name) {
  static const std::regex re("[A-Za-z0-9_-]{1,32}");
  if (!std::regex_match(name, re)) {
    throw faults::ValidationError(
        {{"--name", "want 1..32 characters of [A-Za-z0-9_-], got \"" + name + "\""}});
  }
}

std::string NetnsName(const std::string& lab, int member) {
  return "fl-" + lab + "-e" + std::to_string(member);
}
std::string BridgeName(const std::string& lab) { return "fl" + Tag(lab) + "br"; }
std::string VethName(const std::string& lab, int member) {
  return "fl" + Tag(lab) + "e" + std::to_string(member);
}

std::vector<std::string> ListLabs(const fs::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(RootOr(root), ec)) {
    if (fs::exists(e.path() / "lab.json")) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ResolveLabName(const std::optional<std::string>& name, const fs::path& root) {
  if (name) {
    ValidateLabName(*name);
    return *name;
  }
  auto labs = ListLabs(root);
  if (labs.empty()) throw FaultError("no lab is up under " + RootOr(root).string());
  if (labs.size() > 1) {
    std::string names;
    for (const auto& l : labs) names += (names.empty() ? "" : ", ") + l;
    throw FaultError("several labs are up (" + names + "): say which with --name");
  }
  return labs[0];
}

LabInfo LoadLab(const std::string& name, const fs::path& root) {
  ValidateLabName(name);
  fs::path p = RootOr(root) / name / "lab.json";
  if (!fs::exists(p)) throw FaultError("no lab named \"" + name + "\" (no " + p.string() + ")");
  return LabFromJson(Slurp(p));
}

LabInfo Up(const LabOptions& o) {
  ValidateLabName(o.name);
  const Binaries binaries = ResolveBinaries(o);
  const fs::path root = RootOr(o.root);
  const fs::path dir = root / o.name;
  ClaimName(o, root, dir);
  try {
    sys::Rtnl host;
    const Prefix subnet = ChooseSubnet(o, root, host);
    LabInfo info = Plan(o, dir, subnet, binaries);
    // The plan goes to disk before anything exists, so `lab down` can undo a crash at any step.
    Save(info);
    Wire(o, info, subnet, host);
    const auto deadline = Clock::now() + o.timeout;
    StartMembers(o, info, deadline);
    WaitHealthy(o, info, deadline);
    if (!info.controller.binary.empty()) StartController(o, info, deadline);
    info.state = "up";
    Save(info);
    return info;
  } catch (...) {
    try {
      Down(o.name, root);
    } catch (const std::exception&) {
      // The original error matters more; `lab down` can be run again.
    }
    throw;
  }
}

std::vector<std::string> Down(const std::string& name, const fs::path& root_opt) {
  ValidateLabName(name);
  fs::path root = RootOr(root_opt);
  fs::path dir = root / name;
  std::vector<std::string> done;
  std::optional<LabInfo> info;
  try {
    if (fs::exists(dir / "lab.json")) info = LabFromJson(Slurp(dir / "lab.json"));
  } catch (const std::exception&) {
    // A torn description: fall back to the names derived from the lab's name.
  }

  // 1. Processes. The controller first and politely: it cancels its runs, whose faults are
  //    recovered through the agents, which must still be up. Then the agents, also politely, so
  //    they revert their faults and do not restart etcd; then everything else recorded or living
  //    in one of the lab's namespaces.
  auto controllers = LabControllers(dir, info);
  StopPolitely(controllers, std::chrono::seconds(20));
  for (const auto& [pid, start] : controllers) {
    done.push_back("stopped controller pid " + std::to_string(pid));
  }
  std::vector<std::string> namespaces = LabNamespaces(name);
  std::set<unsigned long> inodes;
  for (const auto& n : namespaces) {
    if (auto ino = sys::NetNs::Inode(sys::NetNs::PathOf(n))) inodes.insert(ino);
  }
  std::vector<std::pair<pid_t, uint64_t>> agents, others;
  if (info) {
    for (const auto& m : info->members) {
      if (m.agent_pid > 0 && faults::process::SameProcess(m.agent_pid, m.agent_start_time)) {
        agents.push_back({m.agent_pid, m.agent_start_time});
      }
      if (m.etcd_pid > 0 && faults::process::SameProcess(m.etcd_pid, m.etcd_start_time)) {
        others.push_back({m.etcd_pid, m.etcd_start_time});
      }
    }
  }
  // The etcds die with no grace as their agents are asked to stop: stopped politely all at once,
  // the leader can spend etcd's whole leadership-transfer timeout (~7 s) on peers that are
  // stopping too, holding its agent past the 5 s below (measured: 7.1 s when the followers went
  // first) — and a lab has no use for a clean etcd shutdown, its data goes next. The agents still
  // revert their faults (a target that died meanwhile is part of the fault contract); an etcd one
  // of them restarts in between is killed with everything else in the lab's namespaces.
  AskToStop(agents);
  for (const auto& [pid, start] : others) {
    if (faults::process::SameProcess(pid, start)) ::kill(pid, SIGKILL);
  }
  AwaitOrKill(agents, std::chrono::seconds(5));
  for (pid_t pid : PidsInNamespaces(inodes)) {
    if (auto p = faults::process::ReadProc(pid)) others.push_back({pid, p->start_time});
  }
  std::set<pid_t> seen;
  for (const auto& [pid, start] : others) {
    if (!seen.insert(pid).second) continue;
    if (faults::process::SameProcess(pid, start)) {
      ::kill(pid, SIGKILL);
      done.push_back("killed pid " + std::to_string(pid));
    }
  }
  for (const auto& [pid, start] : agents)
    done.push_back("stopped agent pid " + std::to_string(pid));
  others.insert(others.end(), agents.begin(), agents.end());
  others.insert(others.end(), controllers.begin(), controllers.end());
  if (!WaitGone(others, std::chrono::seconds(10))) {
    throw FaultError("lab " + name + ": some processes did not exit after SIGKILL");
  }

  // 2. Mounts under the lab directory (IO overlays on data dirs).
  for (const auto& m : MountsUnder(dir.string())) {
    if (::umount2(m.c_str(), MNT_DETACH) == 0) done.push_back("unmounted " + m);
  }

  // 3. Links: deleting the host end of a veth removes the member's end with it.
  sys::Rtnl host;
  for (int i = 1; i <= kMaxMembers; ++i) {
    if (host.DeleteLink(VethName(name, i))) done.push_back("deleted link " + VethName(name, i));
  }
  if (host.DeleteLink(BridgeName(name))) done.push_back("deleted bridge " + BridgeName(name));

  // 4. Namespaces.
  for (const auto& n : namespaces) {
    sys::NetNs::Remove(n);
    done.push_back("removed netns " + n);
  }

  // 5. State.
  std::error_code ec;
  if (fs::exists(dir)) {
    fs::remove_all(dir, ec);
    if (ec) throw FaultError("remove " + dir.string() + ": " + ec.message());
    done.push_back("removed " + dir.string());
  }
  return done;
}

std::vector<EtcdStatus> QueryEtcd(const LabInfo& info, const std::string& etcdctl) {
  std::vector<EtcdStatus> out;
  std::vector<std::thread> threads;
  out.resize(info.members.size());
  // One etcdctl per member, in parallel: an unreachable member costs its timeout only once.
  for (size_t i = 0; i < info.members.size(); ++i) {
    threads.emplace_back([&, i] {
      const auto& m = info.members[i];
      EtcdStatus& s = out[i];
      s.member = m.name;
      s.endpoint = m.client_url;
      CommandResult r;
      try {
        r = RunCommand({etcdctl, "--endpoints", m.client_url, "--dial-timeout", "1s",
                        "--command-timeout", "2s", "endpoint", "status", "-w", "json"},
                       std::chrono::seconds(5));
      } catch (const std::exception& e) {
        s.error = e.what();
        return;
      }
      json j = json::parse(r.out, nullptr, false);
      if (r.exit_code != 0 || j.is_discarded() || !j.is_array() || j.empty()) {
        std::string err = r.err.empty() ? r.out : r.err;
        while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
        auto nl = err.rfind('\n');
        s.error = nl == std::string::npos ? err : err.substr(nl + 1);
        if (s.error.empty()) s.error = "etcdctl exited " + std::to_string(r.exit_code);
        return;
      }
      const json& st = j[0]["Status"];
      s.reachable = true;
      s.member_id = st["header"].value("member_id", uint64_t{0});
      s.revision = st["header"].value("revision", uint64_t{0});
      s.leader = st.value("leader", uint64_t{0});
      s.raft_index = st.value("raftIndex", uint64_t{0});
      s.raft_term = st.value("raftTerm", uint64_t{0});
      s.raft_applied_index = st.value("raftAppliedIndex", uint64_t{0});
      s.db_size = st.value("dbSize", uint64_t{0});
      s.version = st.value("version", std::string());
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

}  // namespace faultline::lab
