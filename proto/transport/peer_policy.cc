#include "proto/transport/peer_policy.h"

#include <algorithm>

namespace faultline::transport {
namespace {

bool Matches(const std::string& pattern, const std::string& name) {
  if (pattern.ends_with('*')) return name.starts_with(pattern.substr(0, pattern.size() - 1));
  return name == pattern;
}

// Runs the policy inside gRPC's server auth filter: the call is refused with the policy's status
// before it reaches a service.
class PolicyProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit PolicyProcessor(PeerPolicy policy) : policy_(std::move(policy)) {}
  // The check is a few string compares: run it inline on the call's thread.
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext* context, OutputMetadata*,
                       OutputMetadata*) override {
    auto path = metadata.find(":path");
    std::string_view method;
    if (path != metadata.end()) method = {path->second.data(), path->second.size()};
    return policy_.Check(*context, method);
  }

 private:
  PeerPolicy policy_;
};

}  // namespace

void PeerPolicy::Allow(const std::vector<std::string>& names, std::vector<std::string> methods) {
  Rule r;
  for (const auto& n : names) {
    if (!n.empty()) r.names.push_back(n);
  }
  if (r.names.empty()) return;
  r.methods = std::move(methods);
  rules_.push_back(std::move(r));
}

grpc::Status PeerPolicy::Check(const grpc::AuthContext& peer, std::string_view method) const {
  if (rules_.empty()) return grpc::Status::OK;
  std::string who;
  for (const auto& cn : peer.FindPropertyValues("x509_common_name"))
    who.assign(cn.data(), cn.size());
  bool known = false;
  for (const auto& rule : rules_) {
    if (std::none_of(rule.names.begin(), rule.names.end(),
                     [&](const std::string& p) { return Matches(p, who); })) {
      continue;
    }
    known = true;
    if (rule.methods.empty() ||
        std::find(rule.methods.begin(), rule.methods.end(), method) != rule.methods.end()) {
      return grpc::Status::OK;
    }
  }
  if (known) {
    return {grpc::StatusCode::PERMISSION_DENIED,
            "client certificate \"" + who + "\" may not call " + std::string(method)};
  }
  return {grpc::StatusCode::PERMISSION_DENIED,
          "client certificate \"" + who + "\" is not allowed (--tls-allowed-clients)"};
}

void PeerPolicy::Enforce(grpc::ServerCredentials& creds) const {
  if (rules_.empty()) return;
  creds.SetAuthMetadataProcessor(std::make_shared<PolicyProcessor>(*this));
}

}  // namespace faultline::transport
