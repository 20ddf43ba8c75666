#include "faults/net/nfqueue.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "faults/net/timer_heap.h"

namespace faultline::faults::net {
namespace {

int64_t NowNs() { return sys::MonotonicNs(); }

// Sends one config message and waits for its acknowledgement; returns 0 or -errno.
int Config(mnl_socket* nl, uint32_t portid, nlmsghdr* nlh) {
  nlh->nlmsg_flags |= NLM_F_ACK;
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return -errno;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
    if (n < 0) return -errno;
    int rc = mnl_cb_run(buf.data(), n, nlh->nlmsg_seq, portid, nullptr, nullptr);
    if (rc < 0) return -errno;
    if (rc <= MNL_CB_STOP) return 0;
  }
}

}  // namespace

PacketQueue::PacketQueue(uint16_t first, uint16_t last, QueueBehaviour behaviour)
    : b_(behaviour), rng_(Rng(behaviour.seed).Fork("net.nfqueue")) {
  wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) ThrowErrno("nfqueue: eventfd");
  nl_ = mnl_socket_open(NETLINK_NETFILTER);
  if (!nl_) ThrowErrno("nfqueue: netlink socket");
  if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
    mnl_socket_close(nl_);
    ThrowErrno("nfqueue: bind");
  }
  portid_ = mnl_socket_get_portid(nl_);
  const int fd = mnl_socket_get_fd(nl_);
  // A large receive buffer absorbs bursts; overruns are counted, not fatal (fail-open).
  int rcvbuf = 8 << 20, one = 1;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);

  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  int err = -EBUSY;
  for (uint32_t q = first; q <= last; ++q) {
    nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, q);
    nlh->nlmsg_seq = q;
    nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
    err = Config(nl_, portid_, nlh);
    if (err == 0) {
      queue_ = static_cast<uint16_t>(q);
      break;
    }
    if (err != -EBUSY && err != -EEXIST) break;
  }
  if (err != 0) {
    mnl_socket_close(nl_);
    nl_ = nullptr;
    throw FaultError("nfqueue: cannot bind a queue in " + std::to_string(first) + ".." +
                     std::to_string(last) + ": " + strerror(-err));
  }
  nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queue_);
  nlh->nlmsg_seq = 1;
  // Metadata only: verdicts need the packet id, not its bytes.
  nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_META, 0);
  nfq_nlmsg_cfg_put_qmaxlen(nlh, kMaxLen);
  const uint32_t flags = htonl(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO);
  mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, flags);
  mnl_attr_put_u32(nlh, NFQA_CFG_MASK, flags);
  if (int e = Config(nl_, portid_, nlh); e != 0) {
    mnl_socket_close(nl_);
    nl_ = nullptr;
    throw FaultError(std::string("nfqueue: configure queue: ") + strerror(-e));
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

PacketQueue::~PacketQueue() {
  Stop();
  if (nl_) mnl_socket_close(nl_);
}

void PacketQueue::Start() {
  if (thread_.joinable()) return;
  std::promise<void> started;
  auto ready = started.get_future();
  thread_ = std::thread([this, &started] { Run(&started); });
  ready.wait();
}

void PacketQueue::Stop() {
  stop_ = true;
  if (wake_) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_.get(), &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
}

PacketQueue::Stats PacketQueue::stats() const {
  Stats s;
  s.received = c_.received;
  s.accepted = c_.accepted;
  s.dropped = c_.dropped;
  s.held_now = c_.held_now;
  s.held_max = c_.held_max;
  s.verdict_msgs = c_.verdict_msgs;
  s.batch_verdicts = c_.batch_verdicts;
  s.overruns = c_.overruns;
  return s;
}

bool PacketQueue::Drop() {
  if (b_.loss_percent <= 0) return false;
  // netem-style correlation: the next uniform value leans on the previous one.
  const double rho = b_.correlation / 100;
  last_loss_ = (1 - rho) * rng_.Uniform() + rho * last_loss_;
  return last_loss_ * 100 < b_.loss_percent;
}

int64_t PacketQueue::HoldNs() {
  if (b_.reorder_percent > 0) {
    ++since_reorder_;
    const bool candidate = b_.gap == 0 || since_reorder_ >= b_.gap;
    if (candidate && rng_.Percent(b_.reorder_percent)) {
      since_reorder_ = 0;
      return 0;
    }
    return b_.delay.count();
  }
  int64_t hold = b_.delay.count();
  if (b_.jitter.count() > 0) {
    const double rho = b_.correlation / 100;
    double r = b_.normal_jitter ? std::clamp(rng_.Normal(), -3.0, 3.0) / 3 : rng_.Uniform() * 2 - 1;
    last_jitter_ = (1 - rho) * r + rho * last_jitter_;
    hold += static_cast<int64_t>(last_jitter_ * static_cast<double>(b_.jitter.count()));
  }
  return std::max<int64_t>(hold, 0);
}

void PacketQueue::Run(std::promise<void>* started) {
  pthread_setname_np(pthread_self(), "fl-net-release");
  scheduling_ = sys::MakeThreadRealtime();
  const int fd = mnl_socket_get_fd(nl_);
  std::vector<char> rx(MNL_SOCKET_BUFFER_SIZE * 16);
  std::vector<char> tx(1 << 16);
  size_t tx_len = 0;
  TimerHeap heap(kMaxLen);
  std::vector<uint32_t> due;
  std::vector<int64_t> due_at;
  due.reserve(kMaxLen);
  due_at.reserve(kMaxLen);
  VerdictPlan plan;
  plan.single.reserve(kMaxLen);
  sys::AbsoluteTimer timer;
  started->set_value();

  auto flush = [&] {
    if (tx_len == 0) return;
    mnl_socket_sendto(nl_, tx.data(), tx_len);
    tx_len = 0;
  };
  auto verdict = [&](int type, uint32_t id, int v) {
    if (tx_len + 256 > tx.size()) flush();
    nlmsghdr* nlh = nfq_nlmsg_put(tx.data() + tx_len, type, queue_);
    nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), v);
    tx_len += NLMSG_ALIGN(nlh->nlmsg_len);
    c_.verdict_msgs++;
  };
  // The release path: verdicts for everything due, sent at once, then the lateness recorded.
  auto release_due = [&](int64_t now, bool all) {
    due.clear();
    due_at.clear();
    heap.PopDue(all ? INT64_MAX : now, &due, &due_at);
    if (due.empty()) return;
    // Counted before the verdicts go out: the released packets' receivers may read the counters.
    if (!all) {
      for (int64_t at : due_at) lateness_.Record(now - at);
    }
    PlanVerdicts(due, heap.min_held(), &plan);
    if (plan.has_batch) {
      verdict(NFQNL_MSG_VERDICT_BATCH, plan.batch_max, NF_ACCEPT);
      c_.batch_verdicts++;
    }
    for (uint32_t id : plan.single) verdict(NFQNL_MSG_VERDICT, id, NF_ACCEPT);
    flush();
    c_.accepted += static_cast<int64_t>(due.size());
    c_.held_now = static_cast<int64_t>(heap.size());
  };

  while (!stop_) {
    if (heap.empty()) {
      timer.Disarm();
    } else {
      const int64_t next = heap.next_due();
      if (b_.spin_ns > 0 && next - NowNs() <= b_.spin_ns) {
        sys::SpinUntil(next);
        release_due(NowNs(), false);
        continue;
      }
      timer.Arm(next - b_.spin_ns);
    }
    pollfd p[3] = {{timer.fd(), POLLIN, 0}, {fd, POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    ppoll(p, 3, nullptr, nullptr);
    if (p[0].revents & POLLIN) timer.Drain();
    // Held packets first: a burst of arrivals must not make a due release late.
    release_due(NowNs(), false);
    if (p[1].revents & POLLIN) {
      for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl_, rx.data(), rx.size());
        if (n < 0) {
          if (errno == ENOBUFS) {
            c_.overruns++;
            continue;
          }
          break;  // EAGAIN: drained
        }
        const int64_t now = NowNs();
        int len = static_cast<int>(n);
        for (auto* h = reinterpret_cast<nlmsghdr*>(rx.data()); mnl_nlmsg_ok(h, len);
             h = mnl_nlmsg_next(h, &len)) {
          if (h->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) continue;
          nlattr* attr[NFQA_MAX + 1] = {};
          if (nfq_nlmsg_parse(h, attr) < 0 || !attr[NFQA_PACKET_HDR]) continue;
          auto* ph =
              static_cast<nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
          const uint32_t id = ntohl(ph->packet_id);
          c_.received++;
          if (Drop()) {
            verdict(NFQNL_MSG_VERDICT, id, NF_DROP);
            c_.dropped++;
            continue;
          }
          // Packets due now go through the heap too, so they share the batch verdict below.
          heap.Push(now + HoldNs(), id);
        }
        // Something may have come due while a long burst was read.
        release_due(NowNs(), false);
      }
      c_.held_now = static_cast<int64_t>(heap.size());
      if (c_.held_now > c_.held_max) c_.held_max = c_.held_now.load();
    }
    release_due(NowNs(), false);
    flush();
  }
  // Stopping: whatever is still held goes out now rather than being dropped on unbind.
  release_due(0, true);
  flush();
}

}  // namespace faultline::faults::net
