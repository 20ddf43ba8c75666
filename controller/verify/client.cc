#include "controller/verify/client.h"

#include <cstdio>

#include "proto/transport/tls.h"

namespace faultline::verify {

namespace {

// The slow-watch channel's per-stream receive window: small, so a member's sends stall after a
// few responses (gRPC's default starts at 64 KiB and BDP probing grows it to megabytes). The
// channel is created with the others but, like them, connects only when first used.
constexpr int kSlowWatchWindow = 16 * 1024;

std::string CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "code " + std::to_string(static_cast<int>(c));
  }
}

}  // namespace

EtcdError::EtcdError(std::string endpoint, const std::string& call, const grpc::Status& status)
    : std::runtime_error("etcd " + endpoint + ": " + call + ": " + CodeName(status.error_code()) +
                         (status.error_message().empty() ? "" : ": " + status.error_message())),
      endpoint_(std::move(endpoint)),
      code_(status.error_code()) {}

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char c = static_cast<unsigned char>(end.back());
    if (c < 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

std::string HexId(uint64_t id) {
  char buf[20];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

std::vector<std::string> SplitEndpoints(const std::string& csv) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : csv + ",") {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  return out;
}

EtcdClient::EtcdClient(const std::vector<std::string>& endpoints, ClientOptions options)
    : options_(std::move(options)) {
  if (endpoints.empty()) throw std::invalid_argument("endpoints: at least one is required");
  if (options_.timeout.count() <= 0) throw std::invalid_argument("timeout: must be positive");
  for (const std::string& raw : endpoints) {
    std::string ep = raw;
    bool tls = options_.tls;
    if (ep.starts_with("https://")) {
      tls = true;
      ep = ep.substr(8);
    } else if (ep.starts_with("http://")) {
      ep = ep.substr(7);
    }
    while (!ep.empty() && ep.back() == '/') ep.pop_back();
    size_t colon = ep.rfind(':');
    bool port_ok = colon != std::string::npos && colon > 0 && colon + 1 < ep.size() &&
                   ep.find_first_not_of("0123456789", colon + 1) == std::string::npos &&
                   ep.size() - colon - 1 <= 5 && std::stoi(ep.substr(colon + 1)) > 0 &&
                   std::stoi(ep.substr(colon + 1)) < 65536;
    if (!port_ok || ep.find('/') != std::string::npos) {
      throw std::invalid_argument("endpoints: \"" + raw +
                                  "\" is not HOST:PORT (optionally with http:// or https://)");
    }
    std::shared_ptr<grpc::ChannelCredentials> creds =
        tls ? transport::SslChannelCredentials({.ca = options_.tls_files.ca_file,
                                                .cert = options_.tls_files.cert_file,
                                                .key = options_.tls_files.key_file,
                                                .ca_flag = "tls ca",
                                                .cert_flag = "tls cert",
                                                .key_flag = "tls key"})
            : grpc::InsecureChannelCredentials();
    grpc::ChannelArguments args;
    // Reconnect quickly after a member comes back (the default backoff grows to 2 minutes).
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    // etcd answers up to ~1.5 MiB values and big ranges; do not cap replies at 4 MiB.
    args.SetMaxReceiveMessageSize(-1);
    Member m;
    m.endpoint = ep;
    m.channel = grpc::CreateCustomChannel(ep, creds, args);
    m.kv = pb::KV::NewStub(m.channel);
    m.watch = pb::Watch::NewStub(m.channel);
    m.lease = pb::Lease::NewStub(m.channel);
    m.cluster = pb::Cluster::NewStub(m.channel);
    m.maintenance = pb::Maintenance::NewStub(m.channel);
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kSlowWatchWindow);
    m.slow_channel = grpc::CreateCustomChannel(ep, creds, args);
    m.slow_watch = pb::Watch::NewStub(m.slow_channel);
    members_.push_back(std::move(m));
  }
}

void EtcdClient::Context(grpc::ClientContext* ctx, std::chrono::milliseconds timeout) const {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
}

#define FAULTLINE_ETCD_CALL(stub, method, req, Resp)                \
  grpc::ClientContext ctx;                                          \
  Context(&ctx, options_.timeout);                                  \
  Resp resp;                                                        \
  grpc::Status st = members_[i].stub->method(&ctx, req, &resp);     \
  if (!st.ok()) throw EtcdError(members_[i].endpoint, #method, st); \
  return resp

pb::StatusResponse EtcdClient::Status(size_t i) const {
  FAULTLINE_ETCD_CALL(maintenance, Status, pb::StatusRequest(), pb::StatusResponse);
}
pb::RangeResponse EtcdClient::Range(size_t i, const pb::RangeRequest& req) const {
  FAULTLINE_ETCD_CALL(kv, Range, req, pb::RangeResponse);
}
pb::PutResponse EtcdClient::Put(size_t i, const pb::PutRequest& req) const {
  FAULTLINE_ETCD_CALL(kv, Put, req, pb::PutResponse);
}
pb::DeleteRangeResponse EtcdClient::DeleteRange(size_t i, const pb::DeleteRangeRequest& req) const {
  FAULTLINE_ETCD_CALL(kv, DeleteRange, req, pb::DeleteRangeResponse);
}
pb::TxnResponse EtcdClient::Txn(size_t i, const pb::TxnRequest& req) const {
  FAULTLINE_ETCD_CALL(kv, Txn, req, pb::TxnResponse);
}
pb::CompactionResponse EtcdClient::Compact(size_t i, int64_t revision, bool physical) const {
  pb::CompactionRequest req;
  req.set_revision(revision);
  req.set_physical(physical);
  FAULTLINE_ETCD_CALL(kv, Compact, req, pb::CompactionResponse);
}
pb::HashKVResponse EtcdClient::HashKV(size_t i, int64_t revision) const {
  pb::HashKVRequest req;
  req.set_revision(revision);
  FAULTLINE_ETCD_CALL(maintenance, HashKV, req, pb::HashKVResponse);
}
pb::DefragmentResponse EtcdClient::Defragment(size_t i) const {
  FAULTLINE_ETCD_CALL(maintenance, Defragment, pb::DefragmentRequest(), pb::DefragmentResponse);
}
pb::AlarmResponse EtcdClient::Alarms(size_t i) const {
  pb::AlarmRequest req;
  req.set_action(pb::AlarmRequest::GET);
  FAULTLINE_ETCD_CALL(maintenance, Alarm, req, pb::AlarmResponse);
}
pb::MemberListResponse EtcdClient::MemberList(size_t i) const {
  FAULTLINE_ETCD_CALL(cluster, MemberList, pb::MemberListRequest(), pb::MemberListResponse);
}
pb::MemberRemoveResponse EtcdClient::MemberRemove(size_t i, uint64_t id) const {
  pb::MemberRemoveRequest req;
  req.set_id(id);
  FAULTLINE_ETCD_CALL(cluster, MemberRemove, req, pb::MemberRemoveResponse);
}
pb::MemberAddResponse EtcdClient::MemberAdd(size_t i,
                                            const std::vector<std::string>& peer_urls) const {
  pb::MemberAddRequest req;
  for (const auto& u : peer_urls) req.add_peerurls(u);
  FAULTLINE_ETCD_CALL(cluster, MemberAdd, req, pb::MemberAddResponse);
}
pb::LeaseGrantResponse EtcdClient::LeaseGrant(size_t i, int64_t ttl_seconds) const {
  pb::LeaseGrantRequest req;
  req.set_ttl(ttl_seconds);
  FAULTLINE_ETCD_CALL(lease, LeaseGrant, req, pb::LeaseGrantResponse);
}
pb::LeaseRevokeResponse EtcdClient::LeaseRevoke(size_t i, int64_t id) const {
  pb::LeaseRevokeRequest req;
  req.set_id(id);
  FAULTLINE_ETCD_CALL(lease, LeaseRevoke, req, pb::LeaseRevokeResponse);
}
#undef FAULTLINE_ETCD_CALL

int64_t EtcdClient::LeaseKeepAliveOnce(size_t i, int64_t id) const {
  // A stream per round trip: the deadline then bounds this one keepalive, and a broken stream
  // never needs to be detected and re-opened by the caller.
  grpc::ClientContext ctx;
  Context(&ctx, options_.timeout);
  auto stream = members_[i].lease->LeaseKeepAlive(&ctx);
  pb::LeaseKeepAliveRequest req;
  req.set_id(id);
  pb::LeaseKeepAliveResponse resp;
  bool ok = stream->Write(req) && stream->Read(&resp);
  stream->WritesDone();
  if (!ok) {
    ctx.TryCancel();
    grpc::Status st = stream->Finish();
    throw EtcdError(members_[i].endpoint, "LeaseKeepAlive",
                    st.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream closed") : st);
  }
  ctx.TryCancel();  // etcd keeps the stream open; end it without waiting for the server
  (void)stream->Finish();
  return resp.ttl();
}

grpc::Status EtcdClient::TryRange(size_t i, const pb::RangeRequest& req, pb::RangeResponse* resp,
                                  std::chrono::milliseconds timeout) const {
  grpc::ClientContext ctx;
  Context(&ctx, timeout);
  return members_[i].kv->Range(&ctx, req, resp);
}
grpc::Status EtcdClient::TryPut(size_t i, const pb::PutRequest& req, pb::PutResponse* resp,
                                std::chrono::milliseconds timeout) const {
  grpc::ClientContext ctx;
  Context(&ctx, timeout);
  return members_[i].kv->Put(&ctx, req, resp);
}
grpc::Status EtcdClient::TryDeleteRange(size_t i, const pb::DeleteRangeRequest& req,
                                        pb::DeleteRangeResponse* resp,
                                        std::chrono::milliseconds timeout) const {
  grpc::ClientContext ctx;
  Context(&ctx, timeout);
  return members_[i].kv->DeleteRange(&ctx, req, resp);
}
grpc::Status EtcdClient::TryTxn(size_t i, const pb::TxnRequest& req, pb::TxnResponse* resp,
                                std::chrono::milliseconds timeout) const {
  grpc::ClientContext ctx;
  Context(&ctx, timeout);
  return members_[i].kv->Txn(&ctx, req, resp);
}

}  // namespace faultline::verify
