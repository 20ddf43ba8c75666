// mTLS off loopback between the CLI, the controller and an agent: two network namespaces the
// test creates, joined by a veth (controller 10.77.0.1, node 10.77.0.2 with etcd and an agent).
// The certificates are `faultline certs init`'s; who gets in is decided by the real binaries
// and, for plaintext, observed with curl as an independent HTTP/2 client.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <optional>
#include <thread>

#include "faultline/v1/controller.grpc.pb.h"
#include "faults/sys/netns.h"
#include "faults/sys/prefix.h"
#include "faults/sys/rtnl.h"
#include "faults/sys/unique_fd.h"
#include "tests/support/certs.h"
#include "tests/support/subprocess.h"

namespace faultline::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kCtlIp[] = "10.77.0.1";
constexpr char kNodeIp[] = "10.77.0.2";
// The namespaces are the test's own: fixed ports cannot collide with anyone else's.
const std::string kCtlAddr = std::string(kCtlIp) + ":7000";
const std::string kAgentAddr = std::string(kNodeIp) + ":7001";
const std::string kEtcdUrl = std::string("http://") + kNodeIp + ":2379";

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class ControllerMtls : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    std::string id = std::to_string(getpid());
    ctl_ns_.emplace(sys::NetNs::Create("fltls-c-" + id));
    node_ns_.emplace(sys::NetNs::Create("fltls-n-" + id));
    {
      sys::UniqueFd node_fd(::open(node_ns_->path().c_str(), O_RDONLY | O_CLOEXEC));
      ASSERT_TRUE(node_fd);
      sys::Rtnl ctl(ctl_ns_->path());
      ctl.AddVeth("vc", "vn", node_fd.get());
      sys::Rtnl node(node_ns_->path());
      for (auto [rtnl, link, ip] : {std::tuple{&ctl, "vc", kCtlIp}, {&node, "vn", kNodeIp}}) {
        rtnl->SetUp("lo");
        rtnl->AddAddress(link, *sys::ParseIpv4(ip), 24);
        rtnl->SetUp(link);
      }
    }
    // The operator's certificates: the controller reachable at its address, one agent cert
    // named by the node's address.
    std::string out;
    ASSERT_EQ(RunCommand({Binary("cli/faultline"), "certs", "init", "--dir", d(), "--agent",
                          kNodeIp, "--controller-host", kCtlIp},
                         &out),
              0)
        << out;
    // A stranger's CA with a CLI-named certificate, and our CA with an identity nobody allows.
    MakeCa(dir_.path(), "stranger-ca");
    IssueClientCert(dir_.path(), "stranger", "faultline-cli", "stranger-ca");
    IssueClientCert(dir_.path(), "impostor", "someone-else", "ca");
  }

  void TearDown() override {
    // A failed test may leave etcd stopped; continue it so it can die.
    if (etcd_ && etcd_->Running()) ::kill(etcd_->pid(), SIGCONT);
  }

  std::string d() const { return dir_.path().string(); }
  std::string f(const std::string& name) const { return (dir_.path() / name).string(); }

  std::vector<std::string> In(const sys::NetNs& ns, std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {"ip", "netns", "exec", ns.name()});
    return argv;
  }
  std::vector<std::string> Controller(std::vector<std::string> extra) const {
    std::vector<std::string> argv = {Binary("controller/faultline-controller"),
                                     "--state-dir",
                                     f("ctl-state"),
                                     "--etcd-endpoints",
                                     kEtcdUrl,
                                     "--heartbeat-interval",
                                     "1s",
                                     "--lease",
                                     "6s"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return In(*ctl_ns_, argv);
  }

  void StartController() {
    controller_ = std::make_unique<Subprocess>(
        Controller({"--listen", "tcp://" + kCtlAddr, "--listen", "unix://" + f("ctl.sock"),
                    "--tls-cert", f("controller.crt"), "--tls-key", f("controller.key"),
                    "--tls-client-ca", f("ca.crt")}),
        f("controller.log"));
    // Local and plaintext: the test's own view of the controller.
    stub_ = v1::Controller::NewStub(
        grpc::CreateChannel("unix://" + f("ctl.sock"), grpc::InsecureChannelCredentials()));
    ASSERT_TRUE(WaitFor([&] { return ListAgents().has_value(); }, 10s))
        << Slurp(f("controller.log"));
  }

  void StartEtcd() {
    etcd_ = std::make_unique<Subprocess>(
        In(*node_ns_, {"etcd", "--name", "m1", "--data-dir", f("etcd"), "--listen-client-urls",
                       kEtcdUrl, "--advertise-client-urls", kEtcdUrl, "--listen-peer-urls",
                       "http://127.0.0.1:2380", "--initial-advertise-peer-urls",
                       "http://127.0.0.1:2380", "--initial-cluster", "m1=http://127.0.0.1:2380"}),
        f("etcd.log"));
    // etcdctl, from the node's namespace, says when it serves.
    ASSERT_TRUE(WaitFor(
        [&] {
          return RunCommand(In(*node_ns_, {"etcdctl", "--endpoints", kEtcdUrl, "--dial-timeout",
                                           "1s", "endpoint", "health"}),
                            nullptr) == 0;
        },
        20s))
        << Slurp(f("etcd.log"));
  }

  void StartAgent() {
    agent_ = std::make_unique<Subprocess>(
        In(*node_ns_,
           {Binary("agent/faultline-agent"), "--listen", "tcp://" + kAgentAddr, "--state-dir",
            f("agent-state"), "--tls-cert", f(std::string(kNodeIp) + ".crt"), "--tls-key",
            f(std::string(kNodeIp) + ".key"), "--tls-client-ca", f("ca.crt"), "--label", "app=mtls",
            "--register", kCtlAddr}),
        f("agent.log"));
  }

  std::optional<v1::ListAgentsResponse> ListAgents() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 500ms);
    v1::ListAgentsResponse r;
    if (!stub_->ListAgents(&ctx, {}, &r).ok()) return std::nullopt;
    return r;
  }

  // The CLI from the node's namespace, as `who` (a certificate base name; "" no certificate).
  int Cli(const std::string& who, std::vector<std::string> args, std::string* out) {
    std::vector<std::string> argv = {Binary("cli/faultline")};
    if (who != "plaintext") argv.insert(argv.end(), {"--tls-ca", f("ca.crt")});
    if (!who.empty() && who != "plaintext") {
      argv.insert(argv.end(), {"--tls-cert", f(who + ".crt"), "--tls-key", f(who + ".key")});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(In(*node_ns_, argv), out);
  }

  // A plaintext HTTP/2 gRPC call (ListRuns / List, empty request) made by curl; returns curl's
  // exit code and, in `out`, the response headers (grpc-status among them).
  int PlaintextCall(const sys::NetNs& from, const std::string& url, const std::string& unix_socket,
                    std::string* out) {
    std::ofstream(f("empty.grpc"), std::ios::binary).write("\0\0\0\0\0", 5);
    std::vector<std::string> argv = {"curl",
                                     "-sS",
                                     "--http2-prior-knowledge",
                                     "--max-time",
                                     "5",
                                     "-D",
                                     "-",
                                     "-o",
                                     "/dev/null",
                                     "-H",
                                     "content-type: application/grpc",
                                     "-H",
                                     "te: trailers",
                                     "--data-binary",
                                     "@" + f("empty.grpc")};
    if (!unix_socket.empty()) argv.insert(argv.end(), {"--unix-socket", unix_socket});
    argv.push_back(url);
    return RunCommand(In(from, argv), out);
  }

  TempDir dir_{"faultline-ctl-mtls"};
  // Declared before the processes: the namespaces go after everything running in them.
  std::optional<sys::NetNs> ctl_ns_, node_ns_;
  std::unique_ptr<Subprocess> etcd_, controller_, agent_;
  std::unique_ptr<v1::Controller::Stub> stub_;
};

TEST_F(ControllerMtls, OffLoopbackOnlyTheCliCertificateGetsTheControllerApi) {
  // No TLS, no TCP listener off loopback: refused before anything starts.
  std::string out;
  EXPECT_EQ(RunCommand(Controller({"--listen", "tcp://" + std::string(kCtlIp) + ":7100"}), &out), 2)
      << out;
  EXPECT_NE(out.find("--listen 10.77.0.1:7100 is off loopback: give --tls-cert, --tls-key and "
                     "--tls-client-ca"),
            std::string::npos)
      << out;

  StartController();
  const std::vector<std::string> runs = {"runs", "--controller", kCtlAddr};
  EXPECT_EQ(Cli("cli", runs, &out), 0) << out << Slurp(f("controller.log"));
  // Our CA, an agent's identity: it may register, not read or submit runs.
  EXPECT_NE(Cli(kNodeIp, runs, &out), 0);
  EXPECT_NE(out.find("may not call /faultline.v1.Controller/ListRuns"), std::string::npos) << out;
  // Our CA, an identity nobody allowed.
  EXPECT_NE(Cli("impostor", runs, &out), 0);
  EXPECT_NE(out.find("\"someone-else\" is not allowed"), std::string::npos) << out;
  // Another CA's certificate with the CLI's name, and no client certificate at all.
  EXPECT_NE(Cli("stranger", runs, &out), 0) << out;
  EXPECT_NE(Cli("", runs, &out), 0) << out;
  // The CLI does not even try plaintext off loopback...
  EXPECT_EQ(Cli("plaintext", runs, &out), 2) << out;
  EXPECT_NE(out.find("is off loopback"), std::string::npos) << out;
  // ...and a client that does gets no gRPC answer from the TCP port; the same call on the
  // controller's local unix socket works, so the probe itself is sound.
  EXPECT_NE(PlaintextCall(*node_ns_, "http://" + kCtlAddr + "/faultline.v1.Controller/ListRuns", "",
                          &out),
            0)
      << out;
  EXPECT_EQ(out.find("grpc-status"), std::string::npos) << out;
  ASSERT_EQ(PlaintextCall(*ctl_ns_, "http://localhost/faultline.v1.Controller/ListRuns",
                          f("ctl.sock"), &out),
            0)
      << out;
  EXPECT_NE(out.find("grpc-status: 0"), std::string::npos) << out;
}

TEST_F(ControllerMtls, AgentRegistersOverMtlsAndTheControllerDrivesItThroughARun) {
  StartEtcd();
  StartController();
  StartAgent();
  // Registration crossed the veth with the agent's certificate.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = ListAgents();
        return r && r->agents_size() == 1 && r->agents(0).alive();
      },
      15s))
      << Slurp(f("agent.log")) << Slurp(f("controller.log"));
  EXPECT_EQ(ListAgents()->agents(0).agent().address(), kAgentAddr);

  // The agent off loopback: the CLI's certificate gets in, plaintext does not.
  std::string out;
  EXPECT_EQ(Cli("cli", {"--agent", kAgentAddr, "status"}, &out), 0) << out;
  // Verified by the name every agent certificate carries instead of the address dialed (how a
  // controller reaches agents that share one certificate), and refused for a name it lacks.
  EXPECT_EQ(
      Cli("cli", {"--agent", kAgentAddr, "--tls-server-name", "faultline-agent", "status"}, &out),
      0)
      << out;
  EXPECT_EQ(Cli("cli", {"--agent", kAgentAddr, "--tls-server-name", "etcd-node-7", "status"}, &out),
            3)
      << out;
  EXPECT_NE(PlaintextCall(*ctl_ns_, "http://" + kAgentAddr + "/faultline.v1.Agent/List", "", &out),
            0)
      << out;

  // The controller it registers with is control plane: the agent refuses a network fault that
  // would cut it off, naming the field.
  EXPECT_EQ(Cli("cli",
                {"--agent", kAgentAddr, "inject", "net", "loss", "--percent", "100", "--to",
                 std::string(kCtlIp) + "/32", "--duration", "5s"},
                &out),
            2)
      << out;
  EXPECT_NE(out.find("net.to[0]: covers " + std::string(kCtlIp) + "/32"), std::string::npos) << out;

  // A run through the controller pauses etcd via the agent (controller -> agent over mTLS),
  // seen from /proc, not from anyone's report.
  std::ofstream(f("pause.yaml")) << "apiVersion: faultline/v1\nkind: Experiment\n"
                                    "metadata: {name: mtls-pause}\nspec:\n  seed: 5\n"
                                    "  workload: {kind: none}\n  steps:\n    - name: pause\n"
                                    "      fault: {process: {action: pause, target: {pid: "
                                 << etcd_->pid()
                                 << "}}}\n"
                                    "      target: {mode: all, matchLabels: {app: mtls}}\n"
                                    "      duration: 3s\n  checks: [health]\n";
  auto state = [&] {
    std::string stat = Slurp("/proc/" + std::to_string(etcd_->pid()) + "/stat");
    auto p = stat.rfind(')');
    return p == std::string::npos || p + 2 >= stat.size() ? '?' : stat[p + 2];
  };
  std::atomic<bool> done{false};
  std::atomic<int> stopped_samples{0};
  std::thread watcher([&] {
    while (!done) {
      if (state() == 'T') ++stopped_samples;
      std::this_thread::sleep_for(20ms);
    }
  });
  int code = Cli("cli", {"run", f("pause.yaml"), "--controller", kCtlAddr}, &out);
  done = true;
  watcher.join();
  EXPECT_EQ(code, 0) << out << Slurp(f("controller.log")) << Slurp(f("agent.log"));
  // ~3s of 20ms samples; generous bounds.
  EXPECT_GT(stopped_samples.load(), 50) << out;
  EXPECT_NE(state(), 'T') << "the pause ended with the run";
  EXPECT_NE(out.find("fault.applied pause @" + kAgentAddr), std::string::npos) << out;
  EXPECT_NE(out.find("fault.reverted pause @" + kAgentAddr), std::string::npos) << out;
  EXPECT_NE(out.find("PASSED"), std::string::npos) << out;
}

}  // namespace
}  // namespace faultline::testing
