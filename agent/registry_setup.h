#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "faultline/v1/agent.pb.h"
#include "faults/core/registry.h"
#include "faults/io/overlay_process.h"
#include "proto/transport/address.h"

namespace faultline::faults::process {
class ManagedSet;
}
namespace faultline::faults::net {
class IfbPool;
}

namespace faultline::agent {

// Flags of the fault families and host services (managed processes, overlays, ...).
struct AgentOptions {
  std::string managed_config;
  std::vector<std::string> controller_addresses;
  uint16_t metrics_port = 0;  // set by main from --metrics-listen
  std::string time_max_offset = "24h";
  // Idle IFB devices kept for tc-backend network faults (0: each fault makes and deletes its own).
  int ifb_pool = 4;
};
void AddAgentOptions(CLI::App& app, AgentOptions& options);

// What the agent hosts besides its faults: the family-specific long-lived objects (managed
// processes, FUSE overlays, network state) that fault families act through. This is the one
// place that knows every family; adding a family means registering it here.
class Host {
 public:
  Host(const AgentOptions& options, std::filesystem::path state_dir);
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  faults::FaultContext Context();
  void RegisterFamilies(faults::Registry& registry,
                        const std::vector<transport::ListenAddress>& listen);
  // Families served plus what each family's probe found on this kernel.
  std::vector<v1::Capability> Capabilities(const faults::Registry& registry) const;
  // Attaches to the overlay processes a previous agent left serving (before the journal is
  // replayed: its IO faults are reverted through them). Returns what it found.
  std::vector<std::string> AttachOverlays() { return overlays_.Attach(); }
  // --recover-only, after the journal was replayed (so no rule of a fault is left armed): ends
  // the overlay processes nothing uses; one under a live process (etcd kept running by
  // KillMode=process) keeps serving, rule-free, for the next agent to attach to, because an
  // unmount under it would fail its next disk op.
  std::vector<std::string> EndOverlays() { return overlays_.UnmountIdle(); }
  // Starts host services (managed processes) after the journal was replayed.
  void Start();
  // Creates the idle IFBs of the network family's pool (after the journal was replayed and the
  // sweep removed a crashed agent's). Returns what it did; a kernel without IFB is logged, not
  // fatal.
  std::vector<std::string> FillIfbPool();
  // Ends managed processes on overlays, the overlays, and deletes the idle pooled IFBs.
  void Stop();

  faults::io::OverlayManager& overlays() { return overlays_; }
  // The supervised processes (null without --managed-config).
  const faults::process::ManagedSet* managed() const { return managed_.get(); }

 private:
  AgentOptions options_;
  std::filesystem::path state_dir_;
  // Declared before managed_: managed processes may run on overlays, so overlays go last.
  faults::io::OverlayManager overlays_;
  std::unique_ptr<faults::process::ManagedSet> managed_;
  // Lent to the net family at registration; outlives the registry and every fault (main
  // declares the Host first).
  std::unique_ptr<faults::net::IfbPool> ifb_pool_;
};

}  // namespace faultline::agent
