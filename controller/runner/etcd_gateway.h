#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace faultline::controller {

// A small client of etcd's JSON gateway (the grpc-gateway every etcd 3.4 member serves on its
// client URL). The runner only needs Status, MemberList and plain puts/ranges, so it speaks HTTP
// over a socket instead of waiting for a full gRPC client; each call is one short connection,
// which also means a stopped member costs a timeout and never a stuck stream.
class EtcdGateway {
 public:
  // `endpoint` is a client URL ("http://127.0.0.1:2379") or HOST:PORT.
  explicit EtcdGateway(std::string endpoint,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

  const std::string& endpoint() const { return endpoint_; }

  // POSTs `body` to `path` and returns the decoded JSON. Throws std::runtime_error naming the
  // endpoint on connection errors, timeouts, non-200 answers and bad JSON.
  nlohmann::json Call(const std::string& path, const nlohmann::json& body) const;

  struct Status {
    uint64_t member_id = 0;
    uint64_t leader = 0;  // 0: the member knows no leader
    uint64_t raft_term = 0;
    uint64_t raft_index = 0;
    uint64_t raft_applied_index = 0;
    int64_t revision = 0;
    int64_t db_size = 0;
    std::string version;
  };
  Status GetStatus() const;

  struct Member {
    uint64_t id = 0;
    std::string name;
    std::vector<std::string> client_urls;
  };
  std::vector<Member> MemberList() const;

  // Returns the header revision of the write.
  int64_t Put(const std::string& key, const std::string& value) const;
  // Linearizable (or serializable) get; nullopt when the key is absent.
  std::optional<std::string> Get(const std::string& key, bool serializable = false) const;
  // Number of keys in the whole keyspace as this member sees it, without consensus.
  int64_t CountAllSerializable() const;
  // HashKV at `revision` (0: latest); returns {hash, compact_revision}.
  std::pair<uint64_t, int64_t> HashKV(int64_t revision) const;
  // Active alarms as "MEMBERID:ALARM" strings.
  std::vector<std::string> Alarms() const;

 private:
  std::string endpoint_;
  std::string host_;
  int port_ = 0;
  std::chrono::milliseconds timeout_;
};

std::string Base64Encode(const std::string& in);
std::string Base64Decode(const std::string& in);

}  // namespace faultline::controller
