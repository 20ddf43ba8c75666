#include "controller/state/etcd_store.h"

namespace faultline::controller {

namespace {
// Documents per Range page: runs carry their reports, so a page stays a few MiB at most.
constexpr int64_t kPage = 64;
}  // namespace

EtcdStore::EtcdStore(const EtcdKeyspace& keyspace, EtcdElection& election)
    : ks_(keyspace), election_(election) {}

void EtcdStore::FencedWrite(const verify::pb::RequestOp& op, const std::string& what) {
  auto fence = election_.Fence();
  if (!fence) {
    throw FencedError(what + ": refused: this replica is not the active controller");
  }
  verify::pb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key(ks_.leader_key());
  cmp->set_target(verify::pb::Compare::CREATE);
  cmp->set_result(verify::pb::Compare::EQUAL);
  cmp->set_create_revision(*fence);
  *txn.add_success() = op;
  auto resp = ks_.Call([&](size_t i) { return ks_.client().Txn(i, txn); });
  if (!resp.succeeded()) {
    election_.Fenced(*fence);
    throw FencedError(what + ": refused: the election term " + std::to_string(*fence) +
                      " ended (another replica is active)");
  }
}

void EtcdStore::Put(const std::string& kind, const std::string& id, const nlohmann::json& doc) {
  ValidateStateId(id);
  verify::pb::RequestOp op;
  auto* put = op.mutable_request_put();
  put->set_key(ks_.Key(kind, id));
  put->set_value(doc.dump());
  FencedWrite(op, "store " + kind + "/" + id);
}

void EtcdStore::PutUnfenced(const std::string& kind, const std::string& id,
                            const nlohmann::json& doc) {
  ValidateStateId(id);
  verify::pb::PutRequest put;
  put.set_key(ks_.Key(kind, id));
  put.set_value(doc.dump());
  ks_.Call([&](size_t i) { return ks_.client().Put(i, put); });
}

void EtcdStore::Remove(const std::string& kind, const std::string& id) {
  ValidateStateId(id);
  verify::pb::RequestOp op;
  op.mutable_request_delete_range()->set_key(ks_.Key(kind, id));
  FencedWrite(op, "remove " + kind + "/" + id);
}

std::optional<nlohmann::json> EtcdStore::Get(const std::string& kind, const std::string& id) const {
  ValidateStateId(id);
  verify::pb::RangeRequest req;
  req.set_key(ks_.Key(kind, id));
  auto resp = ks_.Call([&](size_t i) { return ks_.client().Range(i, req); });
  if (resp.kvs_size() == 0) return std::nullopt;
  auto j = nlohmann::json::parse(resp.kvs(0).value(), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::map<std::string, nlohmann::json> EtcdStore::List(const std::string& kind,
                                                      std::vector<std::string>* bad) const {
  const std::string prefix = ks_.Key(kind, "");
  std::map<std::string, nlohmann::json> out;
  verify::pb::RangeRequest req;
  req.set_key(prefix);
  req.set_range_end(verify::PrefixEnd(prefix));
  req.set_limit(kPage);
  for (;;) {
    auto resp = ks_.Call([&](size_t i) { return ks_.client().Range(i, req); });
    for (const auto& kv : resp.kvs()) {
      auto j = nlohmann::json::parse(kv.value(), nullptr, false);
      if (j.is_discarded()) {
        if (bad) bad->push_back(kv.key());
        continue;
      }
      out[kv.key().substr(prefix.size())] = std::move(j);
    }
    if (!resp.more() || resp.kvs_size() == 0) break;
    // The next page starts just after the last key, at the same revision (a consistent list).
    req.set_key(resp.kvs(resp.kvs_size() - 1).key() + std::string(1, '\0'));
    req.set_revision(resp.header().revision());
  }
  return out;
}

}  // namespace faultline::controller
