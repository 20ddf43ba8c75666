#include "controller/runner/etcd_gateway.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "faults/core/unique_fd.h"

namespace faultline::controller {
namespace {

using Clock = std::chrono::steady_clock;

// Waits for `events` on fd until `deadline`; throws on timeout.
void WaitFd(int fd, short events, Clock::time_point deadline, const std::string& what) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) throw std::runtime_error(what + ": timed out");
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r > 0) return;
    if (r < 0 && errno != EINTR) throw std::runtime_error(what + ": poll: " + strerror(errno));
  }
}

uint64_t U64(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) return 0;
  const auto& v = j[key];
  if (v.is_string()) return std::stoull(v.get<std::string>());
  if (v.is_number()) return v.get<uint64_t>();
  return 0;
}

}  // namespace

std::string Base64Encode(const std::string& in) {
  static const char* kTable = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kTable[(n >> 18) & 63];
    out += kTable[(n >> 12) & 63];
    out += kTable[(n >> 6) & 63];
    out += kTable[n & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t n = uint8_t(in[i]) << 16;
    out += kTable[(n >> 18) & 63];
    out += kTable[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kTable[(n >> 18) & 63];
    out += kTable[(n >> 12) & 63];
    out += kTable[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string Base64Decode(const std::string& in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = val(c);
    if (v < 0) continue;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  return out;
}

EtcdGateway::EtcdGateway(std::string endpoint, std::chrono::milliseconds timeout)
    : endpoint_(std::move(endpoint)), timeout_(timeout) {
  std::string hp = endpoint_;
  if (hp.starts_with("http://")) hp = hp.substr(7);
  if (hp.starts_with("https://")) {
    throw std::invalid_argument("etcd endpoint " + endpoint_ +
                                ": https is not supported by the gateway client");
  }
  if (auto slash = hp.find('/'); slash != std::string::npos) hp = hp.substr(0, slash);
  auto colon = hp.rfind(':');
  if (colon == std::string::npos) {
    throw std::invalid_argument("etcd endpoint " + endpoint_ + ": want HOST:PORT");
  }
  host_ = hp.substr(0, colon);
  port_ = std::stoi(hp.substr(colon + 1));
}

nlohmann::json EtcdGateway::Call(const std::string& path, const nlohmann::json& body) const {
  const std::string what = "etcd " + endpoint_ + path;
  auto deadline = Clock::now() + timeout_;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  if (::inet_pton(AF_INET, host_ == "localhost" ? "127.0.0.1" : host_.c_str(), &addr.sin_addr) !=
      1) {
    throw std::runtime_error(what + ": host must be an IPv4 address");
  }
  faults::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw std::runtime_error(what + ": socket: " + strerror(errno));
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) throw std::runtime_error(what + ": connect: " + strerror(errno));
    WaitFd(fd.get(), POLLOUT, deadline, what + ": connect");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) throw std::runtime_error(what + ": connect: " + strerror(err));
  }
  std::string payload = body.dump();
  std::string req =
      "POST " + path + " HTTP/1.0\r\nHost: " + host_ +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(payload.size()) +
      "\r\nConnection: close\r\n\r\n" + payload;
  size_t off = 0;
  while (off < req.size()) {
    ssize_t n = ::send(fd.get(), req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += size_t(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      WaitFd(fd.get(), POLLOUT, deadline, what + ": send");
    } else {
      throw std::runtime_error(what + ": send: " + strerror(errno));
    }
  }
  std::string resp;
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      resp.append(buf, size_t(n));
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      WaitFd(fd.get(), POLLIN, deadline, what + ": read");
    } else {
      throw std::runtime_error(what + ": read: " + strerror(errno));
    }
  }
  auto head_end = resp.find("\r\n\r\n");
  if (head_end == std::string::npos) throw std::runtime_error(what + ": truncated answer");
  auto sp = resp.find(' ');
  int code = sp == std::string::npos ? 0 : std::atoi(resp.c_str() + sp + 1);
  std::string rbody = resp.substr(head_end + 4);
  if (code != 200) {
    throw std::runtime_error(what + ": HTTP " + std::to_string(code) + ": " + rbody.substr(0, 200));
  }
  auto j = nlohmann::json::parse(rbody, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(what + ": answer is not JSON");
  return j;
}

EtcdGateway::Status EtcdGateway::GetStatus() const {
  auto j = Call("/v3/maintenance/status", nlohmann::json::object());
  Status s;
  if (j.contains("header")) {
    s.member_id = U64(j["header"], "member_id");
    s.revision = int64_t(U64(j["header"], "revision"));
  }
  s.leader = U64(j, "leader");
  s.raft_term = U64(j, "raftTerm");
  s.raft_index = U64(j, "raftIndex");
  s.raft_applied_index = U64(j, "raftAppliedIndex");
  s.db_size = int64_t(U64(j, "dbSize"));
  s.version = j.value("version", "");
  return s;
}

std::vector<EtcdGateway::Member> EtcdGateway::MemberList() const {
  auto j = Call("/v3/cluster/member/list", nlohmann::json::object());
  std::vector<Member> out;
  for (const auto& m : j.value("members", nlohmann::json::array())) {
    Member mm;
    mm.id = U64(m, "ID");
    mm.name = m.value("name", "");
    for (const auto& u : m.value("clientURLs", nlohmann::json::array())) {
      mm.client_urls.push_back(u.get<std::string>());
    }
    out.push_back(std::move(mm));
  }
  return out;
}

int64_t EtcdGateway::Put(const std::string& key, const std::string& value) const {
  auto j = Call("/v3/kv/put", {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}});
  return int64_t(U64(j.value("header", nlohmann::json::object()), "revision"));
}

std::optional<std::string> EtcdGateway::Get(const std::string& key, bool serializable) const {
  auto j = Call("/v3/kv/range", {{"key", Base64Encode(key)}, {"serializable", serializable}});
  auto kvs = j.value("kvs", nlohmann::json::array());
  if (kvs.empty()) return std::nullopt;
  return Base64Decode(kvs[0].value("value", ""));
}

int64_t EtcdGateway::CountAllSerializable() const {
  auto j = Call("/v3/kv/range", {{"key", Base64Encode(std::string(1, '\0'))},
                                 {"range_end", Base64Encode(std::string(1, '\0'))},
                                 {"count_only", true},
                                 {"serializable", true}});
  return int64_t(U64(j, "count"));
}

std::pair<uint64_t, int64_t> EtcdGateway::HashKV(int64_t revision) const {
  // The JSON gateway routes /v3/maintenance/hash to Hash (the whole backend, which differs
  // between members by design), so HashKV goes through etcdctl, the one client every etcd
  // install ships.
  std::string url = endpoint_.starts_with("http") ? endpoint_ : "http://" + endpoint_;
  std::string cmd = "etcdctl --command-timeout=" + std::to_string(timeout_.count()) +
                    "ms --endpoints=" + url + " endpoint hashkv --rev=" + std::to_string(revision) +
                    " -w json 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("etcd " + endpoint_ + ": cannot run etcdctl");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (rc != 0 || j.is_discarded() || !j.is_array() || j.empty() || !j[0].contains("HashKV")) {
    throw std::runtime_error("etcd " + endpoint_ +
                             ": etcdctl endpoint hashkv: " + out.substr(0, 200));
  }
  const auto& h = j[0]["HashKV"];
  return {h.value("hash", uint64_t{0}), h.value("compact_revision", int64_t{0})};
}

std::vector<std::string> EtcdGateway::Alarms() const {
  auto j = Call("/v3/maintenance/alarm", {{"action", "GET"}});
  std::vector<std::string> out;
  for (const auto& a : j.value("alarms", nlohmann::json::array())) {
    out.push_back(std::to_string(U64(a, "memberID")) + ":" + a.value("alarm", "NONE"));
  }
  return out;
}

}  // namespace faultline::controller
