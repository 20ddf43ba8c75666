#include "agent/registry_setup.h"

#include <set>

#include "faults/core/duration.h"
#include "faults/io/io_faults.h"
#include "faults/net/addr.h"
#include "faults/net/ifb_pool.h"
#include "faults/net/net_faults.h"
#include "faults/process/managed.h"
#include "faults/process/process_faults.h"
#include "faults/stress/stress_faults.h"
#include "faults/syscall/syscall_faults.h"
#include "faults/time/time_faults.h"

namespace faultline::agent {

void AddAgentOptions(CLI::App& app, AgentOptions& options) {
  app.add_option("--managed-config", options.managed_config,
                 "JSON list of processes this agent starts and supervises (e.g. etcd); see "
                 "faults/process/managed.h for the format")
      ->check(CLI::ExistingFile);
  app.add_option("--controller", options.controller_addresses,
                 "controller address(es) that network faults must never cut (repeatable)");
  app.add_option("--time-max-offset", options.time_max_offset,
                 "time faults: refuse clock offsets beyond +/- this (default 24h)")
      ->check([](const std::string& v) {
        std::string why;
        auto d = faults::ParseDuration(v, &why);
        return !d ? why : d->count() <= 0 ? std::string("must be positive") : std::string();
      });
  app.add_option("--ifb-pool", options.ifb_pool,
                 "idle IFB devices kept ready for tc-backend network faults, reset and reused "
                 "on revert instead of deleted (0: every fault creates and deletes its own)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
}

Host::Host(const AgentOptions& options, std::filesystem::path state_dir)
    : options_(options), state_dir_(std::move(state_dir)), overlays_(state_dir_ / "io") {
  if (!options_.managed_config.empty()) {
    // Parsed before anything is served or reverted: a bad config stops the agent at once.
    managed_ =
        faults::process::ManagedSet::FromFile(options_.managed_config, state_dir_ / "managed");
  }
  // Empty until FillIfbPool: a --recover-only agent never creates devices.
  if (options_.ifb_pool > 0) ifb_pool_ = std::make_unique<faults::net::IfbPool>(options_.ifb_pool);
}

Host::~Host() = default;

faults::FaultContext Host::Context() {
  faults::FaultContext ctx;
  ctx.state_dir = state_dir_;
  ctx.supervisor = managed_.get();
  return ctx;
}

void Host::RegisterFamilies(faults::Registry& registry,
                            const std::vector<transport::ListenAddress>& listen) {
  faults::process::RegisterProcessFaults(registry);
  faults::io::RegisterIoFaults(registry, overlays_);
  faults::stress::RegisterStressFaults(registry);
  faults::syscalls::RegisterSyscallFaults(registry);
  faults::time::TimeOptions time;
  time.max_offset = *faults::ParseDuration(options_.time_max_offset);
  faults::time::RegisterTimeFaults(registry, time);

  // Network faults never cut the agent's own control channel: its TCP ports and the
  // controllers' addresses are exempt, and a spec that would cover them is refused.
  faults::net::NetOptions net;
  for (const auto& a : listen) {
    if (a.unix_socket) continue;
    auto port = faults::net::EndpointPort(a.host_port);
    if (port && *port > 0) net.exempt_ports.push_back(*port);
  }
  if (options_.metrics_port > 0) net.exempt_ports.push_back(options_.metrics_port);
  for (const auto& c : options_.controller_addresses) {
    std::string why;
    auto cidr = faults::net::EndpointCidr(c, &why);
    if (!cidr) throw std::invalid_argument("--controller " + c + ": " + why);
    net.exempt_cidrs.push_back(*cidr);
  }
  faults::net::RegisterNetFaults(registry, net, ifb_pool_.get());
}

std::vector<v1::Capability> Host::Capabilities(const faults::Registry& registry) const {
  std::vector<v1::Capability> out;
  for (const auto& [name, factory] : registry.factories()) {
    v1::Capability c;
    c.set_name(name);
    c.set_available(true);
    c.set_detail("fault family");
    out.push_back(c);
    for (const auto& [feature, result] : factory->Probe()) {
      v1::Capability f;
      f.set_name(name + "." + feature);
      f.set_available(result.first);
      f.set_detail(result.second);
      out.push_back(f);
    }
  }
  return out;
}

void Host::Start() {
  if (!managed_) return;
  // A managed process that declares an overlay gets it before it starts (a process keeps the
  // fds it opened before a mount). An overlay a previous agent left serving is attached again.
  std::set<std::string> fresh;
  for (const auto& name : managed_->Names()) {
    auto& proc = managed_->Get(name);
    if (proc.spec().overlay.empty()) continue;
    if (!overlays_.Mount(proc.spec().overlay)->attached()) fresh.insert(name);
  }
  // Re-adopts processes a previous agent started; starts the rest.
  managed_->StartAll();
  for (const auto& name : fresh) {
    auto& proc = managed_->Get(name);
    // Re-adopted onto a new overlay: it still holds files on a mount that is gone (they fail
    // with ENOTCONN), so start it again on the new one.
    if (proc.adopted()) proc.Restart(proc.spec().stop_signal, proc.spec().stop_grace);
  }
}

// Managed processes and their overlays outlive a crashed agent on purpose (etcd must not die
// with its chaos agent, nor its IO); the next agent re-adopts them. A stopped agent ends its
// overlays, and first the processes on them, which the next agent starts again.
std::vector<std::string> Host::FillIfbPool() {
  if (!ifb_pool_) return {};
  try {
    return ifb_pool_->Fill();
  } catch (const std::exception& e) {
    return {std::string(e.what()) + " (tc-backend faults will create IFBs as they need them)"};
  }
}

void Host::Stop() {
  if (managed_) {
    for (const auto& name : managed_->Names()) {
      auto& proc = managed_->Get(name);
      if (!proc.spec().overlay.empty()) proc.Stop();
    }
  }
  overlays_.UnmountAll();
  if (ifb_pool_) ifb_pool_->Drain();
}

}  // namespace faultline::agent
