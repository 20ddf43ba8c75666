#include "faults/net/nft.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>

#include <array>
#include <map>
#include <memory>
#include <optional>

namespace faultline::faults::net {
namespace {

// Chain priority: before the default filter tables (0) so exemptions and faults see packets
// first, and a recognisable value in `nft list ruleset`.
constexpr int kChainPriority = -7;
// One inet table sees IPv4 and IPv6 packets; each address rule names its family (meta nfproto).
constexpr uint32_t kFamily = NFPROTO_INET;

struct MnlCloser {
  void operator()(mnl_socket* s) const { mnl_socket_close(s); }
};
using MnlSocket = std::unique_ptr<mnl_socket, MnlCloser>;

MnlSocket OpenNetfilter() {
  MnlSocket nl(mnl_socket_open(NETLINK_NETFILTER));
  if (!nl) ThrowErrno("nftables: netlink socket");
  if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0) ThrowErrno("nftables: bind");
  return nl;
}

// Builds one rule's expression list.
class RuleBuilder {
 public:
  RuleBuilder(const std::string& table, const char* chain) : r_(nftnl_rule_alloc()) {
    nftnl_rule_set_u32(r_, NFTNL_RULE_FAMILY, kFamily);
    nftnl_rule_set_str(r_, NFTNL_RULE_TABLE, table.c_str());
    nftnl_rule_set_str(r_, NFTNL_RULE_CHAIN, chain);
  }
  ~RuleBuilder() {
    if (r_) nftnl_rule_free(r_);
  }
  RuleBuilder(const RuleBuilder&) = delete;
  RuleBuilder& operator=(const RuleBuilder&) = delete;

  void L4Proto(uint8_t proto) {
    auto* m = Expr("meta");
    nftnl_expr_set_u32(m, NFTNL_EXPR_META_KEY, NFT_META_L4PROTO);
    nftnl_expr_set_u32(m, NFTNL_EXPR_META_DREG, NFT_REG_1);
    Cmp(NFT_CMP_EQ, &proto, 1);
  }
  // Interface name (NFT_META_OIFNAME / IIFNAME), compared as the kernel's IFNAMSIZ buffer.
  void IfName(uint32_t key, const std::string& name) {
    auto* m = Expr("meta");
    nftnl_expr_set_u32(m, NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(m, NFTNL_EXPR_META_DREG, NFT_REG_1);
    char buf[IFNAMSIZ] = {};
    name.copy(buf, IFNAMSIZ - 1);
    Cmp(NFT_CMP_EQ, buf, IFNAMSIZ);
  }
  // The packet's IP family (an inet table sees both).
  void Family(bool v6) {
    auto* m = Expr("meta");
    nftnl_expr_set_u32(m, NFTNL_EXPR_META_KEY, NFT_META_NFPROTO);
    nftnl_expr_set_u32(m, NFTNL_EXPR_META_DREG, NFT_REG_1);
    const uint8_t proto = v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
    Cmp(NFT_CMP_EQ, &proto, 1);
  }
  // Network header address inside `c`: the source (`source`) or destination address of the
  // family's header. Needs a Family() check earlier in the rule.
  void Addr(bool source, const Cidr& c) {
    if (c.prefix == 0) return;
    const uint32_t len = static_cast<uint32_t>(c.addr.size());
    const uint32_t offset = c.v6() ? (source ? 8 : 24) : (source ? 12 : 16);
    Payload(NFT_PAYLOAD_NETWORK_HEADER, offset, len);
    if (c.prefix < c.addr.bits()) {
      const auto mask = c.MaskBytes();
      const std::array<uint8_t, 16> zero{};
      auto* b = Expr("bitwise");
      nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
      nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
      nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_LEN, len);
      nftnl_expr_set(b, NFTNL_EXPR_BITWISE_MASK, mask.data(), len);
      nftnl_expr_set(b, NFTNL_EXPR_BITWISE_XOR, zero.data(), len);
    }
    Cmp(NFT_CMP_EQ, c.addr.bytes.data(), len);
  }
  // Transport port (offset 0 = source, 2 = destination) within r. cmp compares bytes in
  // network order, which orders big-endian ports correctly.
  void Port(uint32_t offset, PortRange r) {
    Payload(NFT_PAYLOAD_TRANSPORT_HEADER, offset, 2);
    uint16_t lo = htons(r.first), hi = htons(r.last);
    if (r.first == r.last) {
      Cmp(NFT_CMP_EQ, &lo, 2);
    } else {
      Cmp(NFT_CMP_GTE, &lo, 2);
      Cmp(NFT_CMP_LTE, &hi, 2);
    }
  }
  // numgen random mod 10000 < percent*100.
  void Percent(double percent) {
    auto* n = Expr("numgen");
    nftnl_expr_set_u32(n, NFTNL_EXPR_NG_DREG, NFT_REG_1);
    nftnl_expr_set_u32(n, NFTNL_EXPR_NG_MODULUS, 10000);
    nftnl_expr_set_u32(n, NFTNL_EXPR_NG_TYPE, NFT_NG_RANDOM);
    // numgen leaves a host-order integer; cmp compares bytes, so convert for "<".
    auto* bo = Expr("byteorder");
    nftnl_expr_set_u32(bo, NFTNL_EXPR_BYTEORDER_SREG, NFT_REG_1);
    nftnl_expr_set_u32(bo, NFTNL_EXPR_BYTEORDER_DREG, NFT_REG_1);
    nftnl_expr_set_u32(bo, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
    nftnl_expr_set_u32(bo, NFTNL_EXPR_BYTEORDER_LEN, 4);
    nftnl_expr_set_u32(bo, NFTNL_EXPR_BYTEORDER_SIZE, 4);
    uint32_t limit = htonl(static_cast<uint32_t>(percent * 100 + 0.5));
    Cmp(NFT_CMP_LT, &limit, 4);
  }
  void Counter() { Expr("counter"); }
  void Verdict(int verdict) {
    auto* i = Expr("immediate");
    nftnl_expr_set_u32(i, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(i, NFTNL_EXPR_IMM_VERDICT, verdict);
  }
  // The same through nft_compat and xt_NFQUEUE, for kernels built without nft_queue (this one).
  void XtQueue(uint16_t num) {
    auto* t = Expr("target");
    nftnl_expr_set_str(t, NFTNL_EXPR_TG_NAME, "NFQUEUE");
    nftnl_expr_set_u32(t, NFTNL_EXPR_TG_REV, 3);
    // The kernel checks the size against the target's aligned struct size.
    auto* info = static_cast<xt_NFQ_info_v3*>(calloc(1, XT_ALIGN(sizeof(xt_NFQ_info_v3))));
    info->queuenum = num;
    info->queues_total = 1;
    info->flags = NFQ_FLAG_BYPASS;
    // libnftnl takes ownership of the info buffer (it frees it with the expression).
    nftnl_expr_set(t, NFTNL_EXPR_TG_INFO, info, XT_ALIGN(sizeof(xt_NFQ_info_v3)));
  }
  void Queue(uint16_t num) {
    auto* q = Expr("queue");
    nftnl_expr_set_u16(q, NFTNL_EXPR_QUEUE_NUM, num);
    nftnl_expr_set_u16(q, NFTNL_EXPR_QUEUE_TOTAL, 1);
    nftnl_expr_set_u16(q, NFTNL_EXPR_QUEUE_FLAGS, NFT_QUEUE_FLAG_BYPASS);
  }
  nftnl_rule* get() { return r_; }

 private:
  nftnl_expr* Expr(const char* name) {
    nftnl_expr* e = nftnl_expr_alloc(name);
    if (!e) throw FaultError(std::string("nftables: cannot allocate expression ") + name);
    nftnl_rule_add_expr(r_, e);
    return e;
  }
  void Payload(uint32_t base, uint32_t offset, uint32_t len) {
    auto* p = Expr("payload");
    nftnl_expr_set_u32(p, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
    nftnl_expr_set_u32(p, NFTNL_EXPR_PAYLOAD_BASE, base);
    nftnl_expr_set_u32(p, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
    nftnl_expr_set_u32(p, NFTNL_EXPR_PAYLOAD_LEN, len);
  }
  void Cmp(uint32_t op, const void* data, uint32_t len) {
    auto* c = Expr("cmp");
    nftnl_expr_set_u32(c, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
    nftnl_expr_set_u32(c, NFTNL_EXPR_CMP_OP, op);
    nftnl_expr_set(c, NFTNL_EXPR_CMP_DATA, data, len);
  }

  nftnl_rule* r_;
};

// A netlink batch under construction: messages plus what each one was, for error messages.
class Batch {
 public:
  Batch() : buf_(1 << 20), batch_(mnl_nlmsg_batch_start(buf_.data(), buf_.size())) {
    nftnl_batch_begin(Cur(), seq_++);
    Next();
  }
  ~Batch() { mnl_nlmsg_batch_stop(batch_); }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  void Table(uint16_t type, const std::string& name, uint16_t flags, uint32_t family = kFamily) {
    nftnl_table* t = nftnl_table_alloc();
    nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, family);
    nftnl_table_set_str(t, NFTNL_TABLE_NAME, name.c_str());
    auto* nlh = nftnl_table_nlmsg_build_hdr(Cur(), static_cast<uint16_t>(type),
                                            static_cast<uint16_t>(family), flags | NLM_F_ACK, seq_);
    nftnl_table_nlmsg_build_payload(nlh, t);
    nftnl_table_free(t);
    Record((type == NFT_MSG_DELTABLE ? "delete table " : "create table ") + name);
  }
  void Chain(const std::string& table, const char* name, uint32_t hook) {
    nftnl_chain* c = nftnl_chain_alloc();
    nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, kFamily);
    nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table.c_str());
    nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
    nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
    nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, kChainPriority);
    nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
    nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
    auto* nlh = nftnl_chain_nlmsg_build_hdr(Cur(), NFT_MSG_NEWCHAIN, kFamily,
                                            NLM_F_CREATE | NLM_F_ACK, seq_);
    nftnl_chain_nlmsg_build_payload(nlh, c);
    nftnl_chain_free(c);
    Record(std::string("create chain ") + name);
  }
  void Rule(RuleBuilder& r, const std::string& what) {
    auto* nlh = nftnl_rule_nlmsg_build_hdr(Cur(), NFT_MSG_NEWRULE, kFamily,
                                           NLM_F_APPEND | NLM_F_CREATE | NLM_F_ACK, seq_);
    nftnl_rule_nlmsg_build_payload(nlh, r.get());
    Record("add rule " + what);
  }

  // Sends the batch and waits for every acknowledgement. Throws on the first kernel error.
  void Commit(mnl_socket* nl) {
    nftnl_batch_end(Cur(), seq_++);
    Next();
    if (mnl_socket_sendto(nl, mnl_nlmsg_batch_head(batch_), mnl_nlmsg_batch_size(batch_)) < 0)
      ThrowErrno("nftables: send batch");
    std::vector<char> rx(MNL_SOCKET_BUFFER_SIZE * 4);
    size_t acked = 0;
    std::string error;
    while (acked < what_.size()) {
      pollfd p{mnl_socket_get_fd(nl), POLLIN, 0};
      // After an error the kernel aborts the batch; a short wait collects the rest.
      int n = poll(&p, 1, error.empty() ? 5000 : 50);
      if (n <= 0) break;
      ssize_t len = mnl_socket_recvfrom(nl, rx.data(), rx.size());
      if (len < 0) ThrowErrno("nftables: receive");
      for (auto* h = reinterpret_cast<nlmsghdr*>(rx.data()); mnl_nlmsg_ok(h, static_cast<int>(len));
           h = mnl_nlmsg_next(h, reinterpret_cast<int*>(&len))) {
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        ++acked;
        auto* e = static_cast<nlmsgerr*>(mnl_nlmsg_get_payload(h));
        if (e->error != 0 && error.empty()) {
          auto it = what_.find(h->nlmsg_seq);
          error = (it != what_.end() ? it->second : "batch") + ": " + strerror(-e->error);
        }
      }
    }
    if (!error.empty()) throw FaultError("nftables: " + error);
    if (acked < what_.size()) throw FaultError("nftables: kernel did not acknowledge the batch");
  }

 private:
  char* Cur() { return static_cast<char*>(mnl_nlmsg_batch_current(batch_)); }
  void Next() {
    if (!mnl_nlmsg_batch_next(batch_)) throw FaultError("nftables: batch too large");
  }
  void Record(std::string what) {
    what_[seq_++] = std::move(what);
    Next();
  }

  std::vector<char> buf_;
  mnl_nlmsg_batch* batch_;
  uint32_t seq_ = 1;
  std::map<uint32_t, std::string> what_;
};

// Adds the rules of one chain: exemptions first, then the fault's match.
void AddChainRules(Batch& b, const std::string& table, const char* chain, bool egress,
                   const NftPlan& plan, bool xt_queue) {
  for (const Cidr& c : plan.exempt_cidrs) {
    for (bool source : {true, false}) {
      RuleBuilder r(table, chain);
      r.Family(c.v6());
      r.Addr(source, c);
      r.Verdict(NF_ACCEPT);
      b.Rule(r, "exempt " + c.ToString());
    }
  }
  for (uint16_t port : plan.exempt_ports) {
    for (uint8_t proto : {uint8_t{IPPROTO_TCP}, uint8_t{IPPROTO_UDP}}) {
      for (uint32_t off : {0u, 2u}) {
        RuleBuilder r(table, chain);
        r.L4Proto(proto);
        r.Port(off, {port, port});
        r.Verdict(NF_ACCEPT);
        b.Rule(r, "exempt port " + std::to_string(port));
      }
    }
  }
  // Per family, the cross product of the match lists; an empty list is one wildcard.
  const Match& m = plan.match;
  for (bool v6 : m.families()) {
    std::vector<std::optional<Cidr>> tos, froms;
    for (const Cidr& c : Match::OfFamily(m.to, v6)) tos.push_back(c);
    for (const Cidr& c : Match::OfFamily(m.from, v6)) froms.push_back(c);
    if (tos.empty()) tos.push_back(std::nullopt);
    if (froms.empty()) froms.push_back(std::nullopt);
    std::vector<std::optional<uint8_t>> protos;
    for (uint8_t p : m.l4protos(v6)) protos.push_back(p);
    if (protos.empty()) protos.push_back(std::nullopt);
    // Each port range matches as source or as destination port.
    std::vector<std::optional<std::pair<uint32_t, PortRange>>> ports;
    for (PortRange p : m.ports) {
      ports.push_back(std::pair{0u, p});
      ports.push_back(std::pair{2u, p});
    }
    if (ports.empty()) ports.push_back(std::nullopt);
    for (auto& to : tos)
      for (auto& from : froms)
        for (auto& proto : protos)
          for (auto& port : ports) {
            RuleBuilder r(table, chain);
            r.Family(v6);
            if (!m.device.empty()) r.IfName(egress ? NFT_META_OIFNAME : NFT_META_IIFNAME, m.device);
            if (proto) r.L4Proto(*proto);
            // The remote address is the destination going out, the source coming in.
            if (to) r.Addr(/*source=*/!egress, *to);
            if (from) r.Addr(/*source=*/egress, *from);
            if (port) r.Port(port->first, port->second);
            if (plan.verdict == NftPlan::Verdict::kDrop && plan.percent < 100)
              r.Percent(plan.percent);
            r.Counter();
            if (plan.verdict == NftPlan::Verdict::kQueue) {
              if (xt_queue)
                r.XtQueue(plan.queue);
              else
                r.Queue(plan.queue);
            } else {
              r.Verdict(NF_DROP);
            }
            b.Rule(r, std::string("fault match (") + (v6 ? "IPv6" : "IPv4") + ")");
          }
  }
}

}  // namespace

namespace {

void CreateTable(const std::string& name, const NftPlan& plan, bool xt_queue) {
  MnlSocket nl = OpenNetfilter();
  Batch b;
  // Create-then-delete-then-create makes the batch replace any older table of this name, so
  // Apply() twice is Apply() once, and readers never see a half-built table.
  b.Table(NFT_MSG_NEWTABLE, name, NLM_F_CREATE);
  b.Table(NFT_MSG_DELTABLE, name, 0);
  b.Table(NFT_MSG_NEWTABLE, name, NLM_F_CREATE);
  if (plan.match.egress) {
    b.Chain(name, "egress", NF_INET_LOCAL_OUT);
    AddChainRules(b, name, "egress", true, plan, xt_queue);
  }
  if (plan.match.ingress) {
    b.Chain(name, "ingress", NF_INET_LOCAL_IN);
    AddChainRules(b, name, "ingress", false, plan, xt_queue);
  }
  b.Commit(nl.get());
}

}  // namespace

void NftCreateTable(const std::string& name, const NftPlan& plan) {
  if (plan.verdict != NftPlan::Verdict::kQueue) return CreateTable(name, plan, false);
  try {
    CreateTable(name, plan, false);
  } catch (const FaultError& native) {
    // ENOENT: the kernel has no nft_queue expression; the batch was aborted whole, so retrying
    // with the xtables target changes nothing twice.
    if (std::string(native.what()).find(strerror(ENOENT)) == std::string::npos) throw;
    CreateTable(name, plan, true);
  }
}

void NftDeleteTable(const std::string& name, bool legacy_ip) {
  MnlSocket nl = OpenNetfilter();
  Batch b;
  b.Table(NFT_MSG_DELTABLE, name, 0, legacy_ip ? uint32_t{NFPROTO_IPV4} : kFamily);
  try {
    b.Commit(nl.get());
  } catch (const FaultError& e) {
    if (std::string(e.what()).find(strerror(ENOENT)) == std::string::npos) throw;
  }
}

namespace {

// Runs a dump request and calls `cb` on every reply message.
template <typename Fn>
void Dump(nlmsghdr* req, Fn cb) {
  MnlSocket nl = OpenNetfilter();
  const uint32_t portid = mnl_socket_get_portid(nl.get());
  if (mnl_socket_sendto(nl.get(), req, req->nlmsg_len) < 0) ThrowErrno("nftables: dump request");
  std::vector<char> rx(MNL_SOCKET_BUFFER_SIZE * 4);
  struct Ctx {
    Fn* fn;
  } ctx{&cb};
  auto trampoline = [](const nlmsghdr* h, void* data) -> int {
    (*static_cast<Ctx*>(data)->fn)(h);
    return MNL_CB_OK;
  };
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl.get(), rx.data(), rx.size());
    if (n < 0) ThrowErrno("nftables: dump");
    int rc = mnl_cb_run(rx.data(), n, req->nlmsg_seq, portid, trampoline, &ctx);
    if (rc == MNL_CB_STOP) break;
    if (rc < 0) {
      if (errno == ENOENT) return;
      ThrowErrno("nftables: dump");
    }
  }
}

}  // namespace

std::vector<std::string> NftListTables(bool legacy_ip) {
  char buf[MNL_SOCKET_BUFFER_SIZE];
  auto* req = nftnl_table_nlmsg_build_hdr(
      buf, NFT_MSG_GETTABLE, legacy_ip ? uint32_t{NFPROTO_IPV4} : kFamily, NLM_F_DUMP, 1);
  std::vector<std::string> out;
  Dump(req, [&](const nlmsghdr* h) {
    nftnl_table* t = nftnl_table_alloc();
    if (nftnl_table_nlmsg_parse(h, t) == 0) out.push_back(nftnl_table_get_str(t, NFTNL_TABLE_NAME));
    nftnl_table_free(t);
  });
  return out;
}

int64_t NftMatchedPackets(const std::string& name) {
  char buf[MNL_SOCKET_BUFFER_SIZE];
  nftnl_rule* filter = nftnl_rule_alloc();
  nftnl_rule_set_str(filter, NFTNL_RULE_TABLE, name.c_str());
  auto* req = nftnl_rule_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, kFamily, NLM_F_DUMP, 1);
  nftnl_rule_nlmsg_build_payload(req, filter);
  nftnl_rule_free(filter);
  int64_t total = 0;
  bool found = false;
  Dump(req, [&](const nlmsghdr* h) {
    nftnl_rule* r = nftnl_rule_alloc();
    if (nftnl_rule_nlmsg_parse(h, r) == 0 && name == nftnl_rule_get_str(r, NFTNL_RULE_TABLE)) {
      found = true;
      nftnl_expr_iter* it = nftnl_expr_iter_create(r);
      for (nftnl_expr* e = nftnl_expr_iter_next(it); e; e = nftnl_expr_iter_next(it)) {
        if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter") == 0)
          total += static_cast<int64_t>(nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS));
      }
      nftnl_expr_iter_destroy(it);
    }
    nftnl_rule_free(r);
  });
  return found ? total : -1;
}

}  // namespace faultline::faults::net
