#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "etcd/etcdserverpb/rpc.grpc.pb.h"

namespace faultline::verify {

namespace pb = ::etcdserverpb;

struct TlsOptions {
  std::string ca_file;    // PEM roots to verify members; empty: system roots
  std::string cert_file;  // client certificate for mTLS (with key_file)
  std::string key_file;
};

struct ClientOptions {
  std::chrono::milliseconds timeout{5000};  // per RPC
  bool tls = false;                         // also implied by an https:// endpoint
  TlsOptions tls_files;
};

// An RPC to one member failed; the message names the endpoint, the call and gRPC's reason.
class EtcdError : public std::runtime_error {
 public:
  EtcdError(std::string endpoint, const std::string& call, const grpc::Status& status);
  const std::string& endpoint() const { return endpoint_; }
  grpc::StatusCode code() const { return code_; }

 private:
  std::string endpoint_;
  grpc::StatusCode code_;
};

// The part of etcd's v3 API that faultline needs, with one channel per endpoint so each member
// can be asked separately (checks compare members; a load-balanced channel would hide which one
// answered). Thread-safe: stubs and channels are.
class EtcdClient {
 public:
  // Endpoints are "host:port", "http://host:port" or "https://host:port". Throws
  // std::invalid_argument naming the bad endpoint, or a TLS file that cannot be read.
  EtcdClient(const std::vector<std::string>& endpoints, ClientOptions options = {});

  size_t size() const { return members_.size(); }
  const std::string& endpoint(size_t i) const { return members_[i].endpoint; }
  const ClientOptions& options() const { return options_; }

  // Each throws EtcdError on failure.
  pb::StatusResponse Status(size_t i) const;
  pb::RangeResponse Range(size_t i, const pb::RangeRequest& req) const;
  pb::PutResponse Put(size_t i, const pb::PutRequest& req) const;
  pb::DeleteRangeResponse DeleteRange(size_t i, const pb::DeleteRangeRequest& req) const;
  pb::TxnResponse Txn(size_t i, const pb::TxnRequest& req) const;
  pb::CompactionResponse Compact(size_t i, int64_t revision, bool physical) const;
  pb::HashKVResponse HashKV(size_t i, int64_t revision) const;
  pb::DefragmentResponse Defragment(size_t i) const;
  pb::AlarmResponse Alarms(size_t i) const;
  pb::MemberListResponse MemberList(size_t i) const;
  pb::MemberRemoveResponse MemberRemove(size_t i, uint64_t id) const;
  pb::MemberAddResponse MemberAdd(size_t i, const std::vector<std::string>& peer_urls) const;
  pb::LeaseGrantResponse LeaseGrant(size_t i, int64_t ttl_seconds) const;
  pb::LeaseRevokeResponse LeaseRevoke(size_t i, int64_t id) const;
  // One keepalive round trip on a short-lived LeaseKeepAlive stream; returns the lease's new TTL
  // in seconds, 0 when the lease no longer exists (expired or revoked).
  int64_t LeaseKeepAliveOnce(size_t i, int64_t id) const;

  // Non-throwing forms for the workload, with their own deadline.
  grpc::Status TryRange(size_t i, const pb::RangeRequest& req, pb::RangeResponse* resp,
                        std::chrono::milliseconds timeout) const;
  grpc::Status TryPut(size_t i, const pb::PutRequest& req, pb::PutResponse* resp,
                      std::chrono::milliseconds timeout) const;
  grpc::Status TryDeleteRange(size_t i, const pb::DeleteRangeRequest& req,
                              pb::DeleteRangeResponse* resp,
                              std::chrono::milliseconds timeout) const;
  grpc::Status TryTxn(size_t i, const pb::TxnRequest& req, pb::TxnResponse* resp,
                      std::chrono::milliseconds timeout) const;

  pb::Watch::Stub& watch(size_t i) const { return *members_[i].watch; }
  // Watch streams for a slow consumer: a channel of their own whose flow-control window stays
  // small (no BDP growth), so a reader that falls behind holds the member's sends back within
  // a few dozen KiB instead of megabytes buffered on our side.
  pb::Watch::Stub& slow_watch(size_t i) const { return *members_[i].slow_watch; }

 private:
  struct Member {
    std::string endpoint;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<pb::KV::Stub> kv;
    std::unique_ptr<pb::Watch::Stub> watch;
    std::shared_ptr<grpc::Channel> slow_channel;
    std::unique_ptr<pb::Watch::Stub> slow_watch;
    std::unique_ptr<pb::Lease::Stub> lease;
    std::unique_ptr<pb::Cluster::Stub> cluster;
    std::unique_ptr<pb::Maintenance::Stub> maintenance;
  };
  void Context(grpc::ClientContext* ctx, std::chrono::milliseconds timeout) const;
  ClientOptions options_;
  std::vector<Member> members_;
};

// The key just after every key with this prefix (etcd's range_end for a prefix); "\0" for "".
std::string PrefixEnd(const std::string& prefix);

// An etcd id (member, cluster) the way etcdctl prints it: 16 lowercase hex digits.
std::string HexId(uint64_t id);

// "host:port" list from "a,b,c" (spaces ignored).
std::vector<std::string> SplitEndpoints(const std::string& csv);

}  // namespace faultline::verify
