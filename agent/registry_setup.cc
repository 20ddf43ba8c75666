#include "agent/registry_setup.h"

#include "faults/process/managed.h"
#include "faults/process/process_faults.h"

namespace faultline::agent {

void AddAgentOptions(CLI::App& app, AgentOptions& options) {
  app.add_option("--managed-config", options.managed_config,
                 "JSON list of processes this agent starts and supervises (e.g. etcd); see "
                 "faults/process/managed.h for the format")
      ->check(CLI::ExistingFile);
  app.add_option("--controller", options.controller_addresses,
                 "controller address(es) that network faults must never cut (repeatable)");
}

Host::Host(const AgentOptions& options, std::filesystem::path state_dir)
    : options_(options), state_dir_(std::move(state_dir)) {
  if (!options_.managed_config.empty()) {
    // Parsed before anything is served or reverted: a bad config stops the agent at once.
    managed_ =
        faults::process::ManagedSet::FromFile(options_.managed_config, state_dir_ / "managed");
  }
}

Host::~Host() = default;

faults::FaultContext Host::Context() {
  faults::FaultContext ctx;
  ctx.state_dir = state_dir_;
  ctx.supervisor = managed_.get();
  return ctx;
}

void Host::RegisterFamilies(faults::Registry& registry, const std::vector<ListenAddress>&) {
  faults::process::RegisterProcessFaults(registry);
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
  // Re-adopts processes a previous agent started; starts the rest.
  if (managed_) managed_->StartAll();
}

// Managed processes outlive the agent on purpose (etcd must not die with its chaos agent); the
// next agent re-adopts them. Faults on them were reverted by the fault manager already.
void Host::Stop() {}

}  // namespace faultline::agent
