#pragma once

#include "controller/state/etcd_election.h"
#include "controller/state/etcd_keyspace.h"
#include "controller/state/store.h"

namespace faultline::controller {

// State in an etcd cluster (not the one under test), shared by controller replicas: documents
// at <prefix>/<kind>/<id> as compact JSON. Every write is a Txn conditioned on the election key
// still having this replica's term as its create revision; a refused write ends the term
// (EtcdElection::Fenced) and throws FencedError. A replica that is not active cannot write.
// Reads are linearizable and allowed to every replica.
class EtcdStore final : public StateStore {
 public:
  EtcdStore(const EtcdKeyspace& keyspace, EtcdElection& election);

  void Put(const std::string& kind, const std::string& id, const nlohmann::json& doc) override;
  std::optional<nlohmann::json> Get(const std::string& kind, const std::string& id) const override;
  void Remove(const std::string& kind, const std::string& id) override;
  std::map<std::string, nlohmann::json> List(const std::string& kind,
                                             std::vector<std::string>* bad) const override;
  std::string Describe() const override { return ks_.Describe(); }
  bool shared() const override { return true; }
  void PutUnfenced(const std::string& kind, const std::string& id,
                   const nlohmann::json& doc) override;

 private:
  void FencedWrite(const verify::pb::RequestOp& op, const std::string& what);

  const EtcdKeyspace& ks_;
  EtcdElection& election_;
};

}  // namespace faultline::controller
