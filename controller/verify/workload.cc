#include "controller/verify/workload.h"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "faults/core/rng.h"

namespace faultline::verify {

namespace {

// A write whose RPC did not come back cleanly may still have been proposed and applied: only
// answers that say the request was refused before it reached raft count as failed.
Outcome ClassifyWriteError(const grpc::Status& st) {
  switch (st.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNIMPLEMENTED:
      return Outcome::kFailed;
    default:
      return Outcome::kUnknown;
  }
}

std::string Describe(const grpc::Status& st) {
  return std::to_string(static_cast<int>(st.error_code())) + ": " + st.error_message();
}

// The outcome of a call that threw: refusals before raft are failed, the rest unknown.
Outcome ClassifyError(const EtcdError& e) { return ClassifyWriteError(grpc::Status(e.code(), "")); }

constexpr auto kForever = std::chrono::steady_clock::time_point::max();

}  // namespace

std::vector<SecondStats> LatencyPerSecond(const History& h) {
  std::map<int64_t, std::vector<const Op*>> by_second;
  int64_t t0 = std::numeric_limits<int64_t>::max();
  for (const Op& op : h.ops) t0 = std::min(t0, op.invoke_ns);
  for (const Op& op : h.ops) by_second[(op.return_ns - t0) / 1'000'000'000].push_back(&op);
  std::vector<SecondStats> out;
  for (auto& [sec, ops] : by_second) {
    SecondStats s;
    s.second = sec;
    std::vector<int64_t> lat;
    for (const Op* op : ops) {
      ++s.ops;
      if (op->outcome == Outcome::kOk) {
        ++s.ok;
        lat.push_back((op->return_ns - op->invoke_ns) / 1000);
      } else if (op->outcome == Outcome::kFailed) {
        ++s.failed;
      } else {
        ++s.unknown;
      }
    }
    if (!lat.empty()) {
      std::sort(lat.begin(), lat.end());
      s.p50_us = lat[lat.size() / 2];
      s.p99_us = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
      s.max_us = lat.back();
    }
    out.push_back(s);
  }
  return out;
}

const char* ToString(WatcherOptions::Start s) {
  switch (s) {
    case WatcherOptions::Start::kCurrent:
      return "current";
    case WatcherOptions::Start::kPast:
      return "past";
    case WatcherOptions::Start::kCompacted:
      return "compacted";
    case WatcherOptions::Start::kFuture:
      return "future";
  }
  return "?";
}

// An open watch stream. The watch thread reads; the progress ticker writes RequestProgress and
// cancels at the deadline; gRPC allows one reader and one writer at a time.
struct Workload::Stream {
  std::mutex mu;  // writes, and `done`
  std::shared_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>> rw;
  bool done = false;
  std::chrono::milliseconds request_progress{0};
  std::chrono::steady_clock::time_point next_progress = kForever, deadline = kForever;
  int64_t cancel_unless_compact = -1;  // compacted watchers: end when a newer compaction lands
  std::string prefix;
  std::atomic<int64_t> reached{0};        // highest revision delivered (event or progress)
  std::atomic<int64_t> event_reached{0};  // highest event revision delivered
  bool Write(const pb::WatchRequest& req) {
    std::lock_guard<std::mutex> lock(mu);
    return !done && rw->Write(req);
  }
  bool RequestProgress() {
    pb::WatchRequest req;
    req.mutable_progress_request();
    return Write(req);
  }
};

Workload::Workload(WorkloadOptions options) : options_(std::move(options)) {
  if (options_.clients < 1) throw std::invalid_argument("workload.clients: must be at least 1");
  if (options_.keys < 1) throw std::invalid_argument("workload.keys: must be at least 1");
  if (options_.rate < 0) throw std::invalid_argument("workload.rate: must not be negative");
  if (options_.put_weight < 0 || options_.get_weight < 0 || options_.cas_weight < 0 ||
      options_.delete_weight < 0 ||
      options_.put_weight + options_.get_weight + options_.cas_weight + options_.delete_weight ==
          0) {
    throw std::invalid_argument("workload.mix: weights must be non-negative and not all zero");
  }
  if (options_.op_timeout.count() <= 0) {
    throw std::invalid_argument("workload.op_timeout: must be positive");
  }
  if (options_.serializable_read_percent < 0 || options_.serializable_read_percent > 100) {
    throw std::invalid_argument("workload.serializableReadPercent: must be within 0..100");
  }
  if (options_.past_read_percent < 0 || options_.past_read_percent > 100) {
    throw std::invalid_argument("workload.pastReads.percent: must be within 0..100");
  }
  if (options_.past_read_behind < 1) {
    throw std::invalid_argument("workload.pastReads.behind: must be at least 1");
  }
  if (options_.leases.clients < 0 || options_.leases.keys < 1 || options_.leases.keep_alives < 0 ||
      options_.leases.ttl < std::chrono::seconds(1)) {
    throw std::invalid_argument(
        "workload.leases: clients >= 0, keys >= 1, keepAlives >= 0 and ttl >= 1s");
  }
  if (options_.kubernetes.clients < 0 || options_.kubernetes.objects < 1 ||
      options_.kubernetes.resource.empty()) {
    throw std::invalid_argument("workload.kubernetes: clients >= 0, objects >= 1, a resource");
  }
  if (options_.compaction.at == CompactionOptions::At::kBehind && options_.compaction.behind < 1) {
    throw std::invalid_argument("workload.compaction.behind: must be at least 1");
  }
  for (const WatcherOptions& w : options_.watchers) {
    if (w.offset < 0) throw std::invalid_argument("workload.watchers.offset: must not be negative");
  }
  client_ = std::make_unique<EtcdClient>(options_.endpoints, options_.client);
  const std::string run =
      std::to_string(options_.seed) + "-" +
      std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  if (options_.prefix.empty()) options_.prefix = "/faultline/workload/" + run + "/";
  // A Kubernetes namespace per run, named after the workload prefix so two runs never share it.
  std::string ns = options_.prefix;
  for (char& ch : ns) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '-';
  }
  while (!ns.empty() && ns.front() == '-') ns.erase(ns.begin());
  while (!ns.empty() && ns.back() == '-') ns.pop_back();
  k8s_prefix_ = "/registry/" + options_.kubernetes.resource + "/" + ns + "/";
  per_client_.resize(options_.clients);
}

Workload::~Workload() { Stop(); }

int64_t Workload::Now() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              t0_)
      .count();
}

bool Workload::SleepUntil(std::chrono::steady_clock::time_point t, const std::atomic<bool>& flag) {
  std::unique_lock<std::mutex> lock(stop_mu_);
  stop_cv_.wait_until(lock, t, [&] { return flag.load(); });
  return !flag.load();
}

void Workload::Start() {
  if (started_) return;
  // The model needs every key absent at the start, and watchers need a start revision.
  std::string last_error;
  bool found = false;
  for (size_t i = 0; i < client_->size() && !found; ++i) {
    try {
      for (const std::string& prefix : {options_.prefix, k8s_prefix_}) {
        pb::RangeRequest req;
        req.set_key(prefix);
        req.set_range_end(PrefixEnd(prefix));
        req.set_count_only(true);
        pb::RangeResponse resp = client_->Range(i, req);
        if (resp.count() > 0) {
          throw std::invalid_argument("workload.prefix: \"" + prefix + "\" already holds " +
                                      std::to_string(resp.count()) + " keys");
        }
        start_revision_ = resp.header().revision();
      }
      found = true;
    } catch (const EtcdError& e) {
      last_error = e.what();
    }
  }
  if (!found) throw std::runtime_error("workload: no endpoint answered: " + last_error);
  started_ = true;
  t0_ = std::chrono::steady_clock::now();
  if (options_.watch) {
    if (options_.watchers.empty()) options_.watchers.push_back({});
    for (size_t m = 0; m < client_->size(); ++m) {
      for (size_t e = 0; e < options_.watchers.size(); ++e) {
        watchers_.emplace_back([this, m, e] { RunWatchers(m, e); });
      }
    }
  }
  k8s_list_rev_ = std::vector<std::atomic<int64_t>>(options_.kubernetes.clients);
  for (int c = 0; c < options_.kubernetes.clients; ++c) {
    watchers_.emplace_back([this, c] { RunKubernetesWatch(c); });
  }
  watchers_.emplace_back([this] { RunProgressTicker(); });
  for (int c = 0; c < options_.clients; ++c) threads_.emplace_back([this, c] { RunClient(c); });
  if (options_.compaction.when.enabled() || options_.defragment.when.enabled()) {
    threads_.emplace_back([this] { RunAdmin(); });
  }
  for (int c = 0; c < options_.leases.clients; ++c) {
    threads_.emplace_back([this, c] { RunLeases(c); });
  }
  for (int c = 0; c < options_.kubernetes.clients; ++c) {
    threads_.emplace_back([this, c] { RunKubernetes(c); });
  }
}

// Client ids: the workload's clients first, then the compactor, lease and Kubernetes clients.
int Workload::CompactorId() const { return options_.clients; }
int Workload::LeaseClientId(int c) const { return options_.clients + 1 + c; }
int Workload::KubernetesClientId(int c) const {
  return options_.clients + 1 + options_.leases.clients + c;
}

Op Workload::NewOp(int client, size_t member, OpType type, const std::string& key) {
  Op op;
  op.id = next_id_.fetch_add(1);
  op.client = client;
  op.endpoint = client_->endpoint(member);
  op.type = type;
  op.key = key;
  return op;
}

void Workload::Finish(Op& op, const grpc::Status& st) {
  if (st.ok()) {
    op.outcome = Outcome::kOk;
  } else {
    op.outcome = op.type == OpType::kGet ? Outcome::kFailed : ClassifyWriteError(st);
    // A txn that reads at a past revision fails while applying where that revision is compacted,
    // possibly on some members only (etcd-io/etcd#18667): it may have been applied elsewhere.
    if (op.past_revision > 0 && st.error_code() == grpc::StatusCode::OUT_OF_RANGE) {
      op.outcome = Outcome::kUnknown;
    }
    op.error = Describe(st);
  }
}

Op Workload::DoPut(int client, size_t member, const std::string& key, const std::string& value,
                   int64_t lease) {
  Op op = NewOp(client, member, OpType::kPut, key);
  op.value = value;
  op.lease = lease;
  pb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  req.set_lease(lease);
  pb::PutResponse resp;
  op.invoke_ns = Now();
  grpc::Status st = client_->TryPut(member, req, &resp, options_.op_timeout);
  op.return_ns = Now();
  if (st.ok()) op.revision = resp.header().revision();
  Finish(op, st);
  return op;
}

Op Workload::DoGet(int client, size_t member, const std::string& key, bool serializable,
                   int64_t lease) {
  Op op = NewOp(client, member, OpType::kGet, key);
  op.serializable = serializable;
  op.lease = lease;
  pb::RangeRequest req;
  req.set_key(key);
  req.set_serializable(serializable);
  pb::RangeResponse resp;
  op.invoke_ns = Now();
  grpc::Status st = client_->TryRange(member, req, &resp, options_.op_timeout);
  op.return_ns = Now();
  if (st.ok()) {
    op.revision = resp.header().revision();
    op.found = resp.kvs_size() > 0;
    if (op.found) {
      op.read_value = resp.kvs(0).value();
      op.read_mod_revision = resp.kvs(0).mod_revision();
    }
  }
  Finish(op, st);
  return op;
}

Op Workload::DoDelete(int client, size_t member, const std::string& key) {
  Op op = NewOp(client, member, OpType::kDelete, key);
  pb::DeleteRangeRequest req;
  req.set_key(key);
  pb::DeleteRangeResponse resp;
  op.invoke_ns = Now();
  grpc::Status st = client_->TryDeleteRange(member, req, &resp, options_.op_timeout);
  op.return_ns = Now();
  if (st.ok()) {
    op.revision = resp.header().revision();
    op.deleted = resp.deleted();
  }
  Finish(op, st);
  return op;
}

void Workload::Record(Op op) {
  std::lock_guard<std::mutex> lock(log_.mu);
  log_.ops.push_back(std::move(op));
  ops_done_.fetch_add(1);
}

void Workload::RunClient(int c) {
  faults::Rng rng = faults::Rng(options_.seed).Fork("workload.client." + std::to_string(c));
  std::map<std::string, std::optional<std::string>> known;  // last value this client saw
  const int total =
      options_.put_weight + options_.get_weight + options_.cas_weight + options_.delete_weight;
  const size_t n = client_->size();
  size_t rr = static_cast<size_t>(c);
  int64_t seq = 0;
  int64_t seen_rev = start_revision_;  // newest header revision this client saw
  // Unique per client and op: digits end where the padding starts.
  auto next_value = [&] {
    std::string v = "c" + std::to_string(c) + "-" + std::to_string(seq++);
    if (v.size() < options_.value_size) v.append(options_.value_size - v.size(), 'x');
    return v;
  };
  auto interval =
      options_.rate > 0
          ? std::chrono::nanoseconds(static_cast<int64_t>(1e9 * options_.clients / options_.rate))
          : std::chrono::nanoseconds(0);
  // Spread the clients' first ops over one interval so they do not fire in lockstep.
  auto next = std::chrono::steady_clock::now() +
              std::chrono::nanoseconds(
                  interval.count() > 0 ? static_cast<int64_t>(rng.Below(interval.count())) : 0);
  std::vector<Op>& ops = per_client_[c];
  while (!stop_.load()) {
    if (interval.count() > 0) {
      std::this_thread::sleep_until(next);
      next += interval;
      // After a long stall (a paused member), do not burst to catch up.
      auto now = std::chrono::steady_clock::now();
      if (next < now - std::chrono::seconds(1)) next = now;
      if (stop_.load()) break;
    }
    size_t member = options_.pinned ? static_cast<size_t>(c) % n : rr++ % n;
    std::string key = options_.prefix + "k" + std::to_string(rng.Below(options_.keys));
    int pick = static_cast<int>(rng.Below(total));
    Op op;
    if ((pick -= options_.put_weight) < 0) {
      op = DoPut(c, member, key, next_value());
      if (op.outcome == Outcome::kOk) known[key] = op.value;
    } else if ((pick -= options_.get_weight) < 0) {
      // The extra draw only when asked for, so existing seeds keep their op sequences.
      bool serializable =
          !options_.linearizable_reads || (options_.serializable_read_percent > 0 &&
                                           rng.Percent(options_.serializable_read_percent));
      op = DoGet(c, member, key, serializable);
      if (op.outcome == Outcome::kOk) {
        known[key] = op.found ? std::optional<std::string>(op.read_value) : std::nullopt;
      }
    } else if ((pick -= options_.cas_weight) < 0) {
      op = NewOp(c, member, OpType::kCas, key);
      op.value = next_value();
      op.cas_on = CasOn::kValue;
      auto it = known.find(op.key);
      op.expect_absent = it == known.end() || !it->second.has_value();
      if (!op.expect_absent) op.expect_value = *it->second;
      pb::TxnRequest req;
      pb::Compare* cmp = req.add_compare();
      cmp->set_key(op.key);
      cmp->set_result(pb::Compare::EQUAL);
      if (op.expect_absent) {
        cmp->set_target(pb::Compare::VERSION);  // version 0: the key does not exist
        cmp->set_version(0);
      } else {
        cmp->set_target(pb::Compare::VALUE);
        cmp->set_value(op.expect_value);
      }
      pb::PutRequest* put = req.add_success()->mutable_request_put();
      put->set_key(op.key);
      put->set_value(op.value);
      // On a false compare, read the key so the next cas of this client can succeed.
      req.add_failure()->mutable_request_range()->set_key(op.key);
      if (options_.past_read_percent > 0 && rng.Percent(options_.past_read_percent)) {
        op.past_revision = std::max<int64_t>(1, seen_rev - options_.past_read_behind);
        for (auto* branch : {req.add_success(), req.add_failure()}) {
          auto* range = branch->mutable_request_range();
          range->set_key(op.key);
          range->set_revision(op.past_revision);
        }
      }
      pb::TxnResponse resp;
      op.invoke_ns = Now();
      grpc::Status st = client_->TryTxn(member, req, &resp, options_.op_timeout);
      op.return_ns = Now();
      if (st.ok()) {
        op.revision = resp.header().revision();
        op.succeeded = resp.succeeded();
        if (op.succeeded) {
          known[op.key] = op.value;
        } else if (resp.responses_size() >= 1 &&
                   resp.responses(0).response_range().kvs_size() > 0) {
          known[op.key] = resp.responses(0).response_range().kvs(0).value();
        } else {
          known[op.key] = std::nullopt;
        }
        if (op.past_revision > 0 && resp.responses_size() >= 2) {
          const pb::RangeResponse& past = resp.responses(1).response_range();
          op.past_found = past.kvs_size() > 0;
          if (op.past_found) {
            op.past_value = past.kvs(0).value();
            op.past_mod_revision = past.kvs(0).mod_revision();
          }
        }
      }
      Finish(op, st);
    } else {
      op = DoDelete(c, member, key);
      if (op.outcome == Outcome::kOk) known[key] = std::nullopt;
    }
    if (op.outcome != Outcome::kOk) known.erase(key);
    if (op.outcome == Outcome::kOk) seen_rev = std::max(seen_rev, op.revision);
    ops.push_back(std::move(op));
    ops_done_.fetch_add(1);
  }
}

int64_t Workload::CurrentRevision(size_t member) {
  pb::RangeRequest req;
  req.set_key(options_.prefix);
  req.set_count_only(true);
  pb::RangeResponse resp;
  if (!client_->TryRange(member, req, &resp, options_.op_timeout).ok()) return 0;
  return resp.header().revision();
}

void Workload::RunWatchers(size_t m, size_t entry) {
  const WatcherOptions& w = options_.watchers[entry];
  const std::string base =
      client_->endpoint(m) + "/" + ToString(w.start) + "[" + std::to_string(entry) + "]#";
  int gen = 0;
  int64_t used_compact = 0;
  // The last watch from used_compact ran to its reopen deadline: open it again at the same
  // revision. What a member serves from a compaction revision can change after the watch first
  // opened (etcd#19179: a member restarted mid-compaction drops the DELETE there), so `reopen`
  // must not wait for the next compaction.
  bool reopen_same = false;
  while (!stop_watch_.load()) {
    int64_t start = 0, compact = -1;
    if (w.start == WatcherOptions::Start::kCompacted) {
      // At each new compaction, a watch from exactly its revision (and again at each reopen).
      int64_t c = last_compact_.load();
      if (c == 0 || (c == used_compact && !reopen_same)) {
        SleepUntil(std::chrono::steady_clock::now() + std::chrono::milliseconds(20), stop_watch_);
        continue;
      }
      start = compact = used_compact = c;
    } else if (gen == 0 && w.start == WatcherOptions::Start::kCurrent) {
      start = start_revision_ + 1;  // the first current watchers see the whole workload
    } else {
      int64_t cur = CurrentRevision(m);
      if (cur == 0) {
        SleepUntil(std::chrono::steady_clock::now() + std::chrono::milliseconds(200), stop_watch_);
        continue;
      }
      start = w.start == WatcherOptions::Start::kPast     ? std::max<int64_t>(1, cur - w.offset)
              : w.start == WatcherOptions::Start::kFuture ? cur + w.offset
                                                          : cur + 1;
    }
    auto deadline = w.reopen.count() > 0 ? std::chrono::steady_clock::now() + w.reopen : kForever;
    WatchEnd end = RunWatch(m, base + std::to_string(gen++), ToString(w.start), start,
                            options_.prefix, w, deadline, compact);
    if (end == WatchEnd::kStopped) break;
    reopen_same = end == WatchEnd::kDeadline;
    if (end == WatchEnd::kCompacted) {
      // Its start (or resume point) is gone: begin a new watcher a little later.
      SleepUntil(std::chrono::steady_clock::now() + std::chrono::milliseconds(500), stop_watch_);
    }
  }
}

Workload::WatchEnd Workload::RunWatch(size_t m, const std::string& name, const std::string& why,
                                      int64_t start, const std::string& prefix,
                                      const WatcherOptions& w,
                                      std::chrono::steady_clock::time_point deadline,
                                      int64_t compact) {
  std::vector<WatchEvent> events;
  std::vector<WatchProgress> progress;
  std::vector<WatchOpen> opens;
  int64_t next = start, response = 0;
  WatchEnd result = WatchEnd::kStopped;
  for (int stream_no = 0;; ++stream_no) {
    if (stop_watch_.load()) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      result = WatchEnd::kDeadline;
      break;
    }
    auto st = std::make_shared<Stream>();
    st->ctx = std::make_shared<grpc::ClientContext>();
    st->request_progress = w.request_progress;
    if (w.request_progress.count() > 0) {
      st->next_progress = std::chrono::steady_clock::now() + w.request_progress;
    }
    st->deadline = deadline;
    st->cancel_unless_compact = compact;
    st->reached = next - 1;
    st->event_reached = next - 1;  // nothing below its start is due
    st->prefix = prefix;
    {
      std::lock_guard<std::mutex> lock(streams_mu_);
      if (stop_watch_.load()) break;
      st->rw = (w.read_delay.count() > 0 ? client_->slow_watch(m) : client_->watch(m))
                   .Watch(st->ctx.get());
      streams_.push_back(st);
    }
    WatchOpen o;
    o.watcher = name;
    o.stream = stream_no;
    o.endpoint = client_->endpoint(m);
    o.key = prefix;
    o.range_end = PrefixEnd(prefix);
    o.start_revision = next;
    o.start = stream_no == 0 ? why : "resume";
    o.prev_kv = w.prev_kv;
    o.progress_notify = w.progress_notify;
    o.invoke_ns = Now();
    o.end.clear();
    pb::WatchRequest req;
    pb::WatchCreateRequest* create = req.mutable_create_request();
    create->set_key(o.key);
    create->set_range_end(o.range_end);
    create->set_start_revision(next);
    create->set_prev_kv(w.prev_kv);
    create->set_progress_notify(w.progress_notify);
    bool compacted = false;
    if (st->Write(req)) {
      pb::WatchResponse resp;
      while (st->rw->Read(&resp)) {
        if (resp.compact_revision() != 0) {
          o.end = "compacted";
          o.compact_revision = resp.compact_revision();
          compacted = true;
          break;
        }
        if (resp.canceled()) {
          o.end = "canceled";
          o.error = resp.cancel_reason();
          break;
        }
        if (resp.created()) continue;
        const int64_t now = Now();
        if (resp.events_size() == 0) {
          progress.push_back({name, stream_no, response++, resp.header().revision(), now});
          next = std::max(next, resp.header().revision() + 1);
        } else {
          for (const auto& ev : resp.events()) {
            WatchEvent e;
            e.watcher = name;
            e.revision = ev.kv().mod_revision();
            e.key = ev.kv().key();
            e.is_delete = ev.type() == mvccpb::Event::DELETE;
            e.value = ev.kv().value();
            e.recv_ns = now;
            e.stream = stream_no;
            e.response = response;
            if (!e.is_delete) {
              e.create_revision = ev.kv().create_revision();
              e.version = ev.kv().version();
            }
            if (ev.has_prev_kv()) {
              e.has_prev = true;
              e.prev_value = ev.prev_kv().value();
              e.prev_mod_revision = ev.prev_kv().mod_revision();
            }
            next = std::max(next, e.revision + 1);
            st->event_reached = std::max(st->event_reached.load(), e.revision);
            events.push_back(std::move(e));
          }
          ++response;
        }
        st->reached = std::max(st->reached.load(), next - 1);
        // A slow consumer: the member's queue for this stream fills while we wait. Stops with
        // the traffic so the end of the run drains at full speed.
        if (w.read_delay.count() > 0 && !stop_.load()) {
          SleepUntil(std::chrono::steady_clock::now() + w.read_delay, stop_);
        }
      }
    }
    {
      std::lock_guard<std::mutex> lock(st->mu);
      st->done = true;
    }
    st->ctx->TryCancel();
    grpc::Status status = st->rw->Finish();
    {
      std::lock_guard<std::mutex> lock(streams_mu_);
      streams_.erase(std::remove(streams_.begin(), streams_.end(), st), streams_.end());
    }
    const bool stopping = stop_watch_.load();
    const bool expired = std::chrono::steady_clock::now() >= deadline ||
                         (compact >= 0 && last_compact_.load() != compact);
    if (o.end.empty()) {
      o.end = stopping || expired ? "stopped" : "error";
      if (!stopping && !expired) o.error = Describe(status);
    }
    o.end_ns = Now();
    opens.push_back(std::move(o));
    if (compacted) {
      result = WatchEnd::kCompacted;
      break;
    }
    if (stopping) break;
    if (expired) {
      result = WatchEnd::kDeadline;
      break;
    }
    // Broken (member restarted or cut off): resume after the last revision delivered.
    SleepUntil(std::chrono::steady_clock::now() + std::chrono::milliseconds(100), stop_watch_);
  }
  std::lock_guard<std::mutex> lock(log_.mu);
  for (auto& o : opens) log_.opens.push_back(std::move(o));
  for (auto& e : events) log_.events.push_back(std::move(e));
  for (auto& p : progress) log_.progress.push_back(std::move(p));
  return result;
}

void Workload::RunProgressTicker() {
  while (
      SleepUntil(std::chrono::steady_clock::now() + std::chrono::milliseconds(50), stop_watch_)) {
    auto now = std::chrono::steady_clock::now();
    const int64_t compact = last_compact_.load();
    std::lock_guard<std::mutex> lock(streams_mu_);
    for (auto& st : streams_) {
      if (now >= st->deadline ||
          (st->cancel_unless_compact >= 0 && compact != st->cancel_unless_compact)) {
        st->ctx->TryCancel();
      } else if (now >= st->next_progress) {
        st->next_progress = now + st->request_progress;
        st->RequestProgress();
      }
    }
  }
}

// Compactions and defragmentations on their schedules, one at a time.
void Workload::RunAdmin() {
  using Clock = std::chrono::steady_clock;
  struct Plan {
    Moments when;
    size_t at_index = 0;
    Clock::time_point next_every = kForever;
    int64_t seq = 0;
    Clock::time_point Next() const {
      return std::min(next_every, at_index < when.at.size()
                                      ? Clock::time_point(t0) + when.at[at_index]
                                      : kForever);
    }
    Clock::time_point t0;
  };
  Plan plans[2] = {{options_.compaction.when}, {options_.defragment.when}};
  for (Plan& p : plans) {
    p.t0 = t0_;
    std::sort(p.when.at.begin(), p.when.at.end());
    if (p.when.every.count() > 0) {
      p.next_every = t0_ + (p.when.after.count() >= 0 ? p.when.after : p.when.every);
    }
  }
  while (!stop_.load()) {
    Plan& p = plans[0].Next() <= plans[1].Next() ? plans[0] : plans[1];
    Clock::time_point due = p.Next();
    if (due == kForever) break;
    if (!SleepUntil(due, stop_)) break;
    if (p.next_every == due) {
      p.next_every += p.when.every;
    } else {
      ++p.at_index;
    }
    if (&p == &plans[0]) {
      Compact(p.seq++);
    } else {
      Defragment(p.seq++);
    }
  }
}

void Workload::Compact(int64_t seq) {
  const size_t n = client_->size();
  const size_t member = static_cast<size_t>(seq) % n;
  const CompactionOptions& o = options_.compaction;
  int64_t rev = 0;
  if (o.at == CompactionOptions::At::kDelete) {
    // A key of the compactor's own, put and deleted, so the compaction lands exactly on a delete.
    const std::string key = options_.prefix + "compact/" + std::to_string(seq);
    Op put = DoPut(CompactorId(), member, key, "compact-" + std::to_string(seq));
    const bool put_ok = put.outcome == Outcome::kOk;
    Record(std::move(put));
    if (!put_ok) return;
    Op del = DoDelete(CompactorId(), member, key);
    if (del.outcome == Outcome::kOk && del.deleted > 0) rev = del.revision;
    Record(std::move(del));
  } else {
    rev = CurrentRevision(member);
    if (o.at == CompactionOptions::At::kBehind) rev -= o.behind;
  }
  if (rev <= last_compact_.load()) return;  // nothing new to compact
  AdminOp a;
  a.kind = AdminOp::Kind::kCompact;
  a.client = CompactorId();
  a.endpoint = client_->endpoint(member);
  a.revision = rev;
  a.physical = o.physical;
  a.invoke_ns = Now();
  try {
    client_->Compact(member, rev, o.physical);
    a.outcome = Outcome::kOk;
  } catch (const EtcdError& e) {
    a.outcome = ClassifyError(e);
    a.error = e.what();
  }
  a.return_ns = Now();
  if (a.outcome == Outcome::kOk) {
    int64_t cur = last_compact_.load();
    while (rev > cur && !last_compact_.compare_exchange_weak(cur, rev)) {
    }
  }
  std::lock_guard<std::mutex> lock(log_.mu);
  log_.admin.push_back(std::move(a));
}

void Workload::Defragment(int64_t seq) {
  const size_t n = client_->size();
  std::vector<size_t> members;
  if (options_.defragment.all) {
    for (size_t m = 0; m < n; ++m) members.push_back(m);
  } else {
    members.push_back(static_cast<size_t>(seq) % n);
  }
  for (size_t m : members) {
    AdminOp a;
    a.kind = AdminOp::Kind::kDefragment;
    a.client = CompactorId();
    a.endpoint = client_->endpoint(m);
    a.invoke_ns = Now();
    try {
      client_->Defragment(m);
      a.outcome = Outcome::kOk;
    } catch (const EtcdError& e) {
      a.outcome = ClassifyError(e);
      a.error = e.what();
    }
    a.return_ns = Now();
    std::lock_guard<std::mutex> lock(log_.mu);
    log_.admin.push_back(std::move(a));
  }
}

void Workload::RunLeases(int c) {
  const int id = LeaseClientId(c);
  const size_t n = client_->size();
  const LeaseOptions& lo = options_.leases;
  const int64_t ttl_s = std::max<int64_t>(1, lo.ttl.count() / 1000);
  auto admin = [&](AdminOp a) {
    std::lock_guard<std::mutex> lock(log_.mu);
    log_.admin.push_back(std::move(a));
  };
  for (int64_t seq = 0; !stop_.load(); ++seq) {
    const size_t member = static_cast<size_t>(c + seq) % n;
    AdminOp grant;
    grant.kind = AdminOp::Kind::kLeaseGrant;
    grant.client = id;
    grant.endpoint = client_->endpoint(member);
    grant.ttl = ttl_s;
    grant.invoke_ns = Now();
    try {
      pb::LeaseGrantResponse resp = client_->LeaseGrant(member, ttl_s);
      grant.outcome = Outcome::kOk;
      grant.lease = resp.id();
      grant.ttl = resp.ttl();
      grant.revision = resp.header().revision();
    } catch (const EtcdError& e) {
      grant.outcome = ClassifyError(e);
      grant.error = e.what();
    }
    grant.return_ns = Now();
    const int64_t lease = grant.lease;
    const bool granted = grant.outcome == Outcome::kOk;
    admin(std::move(grant));
    if (!granted) {
      SleepUntil(std::chrono::steady_clock::now() + std::chrono::milliseconds(500), stop_);
      continue;
    }
    std::vector<std::string> keys;
    for (int j = 0; j < lo.keys; ++j) {
      keys.push_back(options_.prefix + "lease/c" + std::to_string(c) + "-" + std::to_string(seq) +
                     "-" + std::to_string(j));
      Record(DoPut(id, member, keys.back(),
                   "l" + std::to_string(c) + "-" + std::to_string(seq) + "-" + std::to_string(j),
                   lease));
    }
    for (int k = 0; k < lo.keep_alives; ++k) {
      if (!SleepUntil(std::chrono::steady_clock::now() + lo.ttl / 3, stop_)) break;
      AdminOp ka;
      ka.kind = AdminOp::Kind::kLeaseKeepAlive;
      ka.client = id;
      ka.endpoint = client_->endpoint(member);
      ka.lease = lease;
      ka.invoke_ns = Now();
      try {
        ka.ttl = client_->LeaseKeepAliveOnce(member, lease);
        ka.outcome = Outcome::kOk;
      } catch (const EtcdError& e) {
        ka.outcome = ClassifyError(e);
        ka.error = e.what();
      }
      ka.return_ns = Now();
      admin(std::move(ka));
      for (const std::string& key : keys) Record(DoGet(id, member, key, false, lease));
    }
    if (lo.expire) {
      // Read the keys until they are gone: the reads after the TTL are what the leases check
      // judges expiry by. Bounded, so a lease that never expires cannot hold the client forever;
      // when stopping, it is revoked below like the others.
      auto give_up = std::chrono::steady_clock::now() + lo.ttl + std::chrono::seconds(60);
      bool gone = false;
      while (!gone && std::chrono::steady_clock::now() < give_up &&
             SleepUntil(std::chrono::steady_clock::now() + std::chrono::seconds(1), stop_)) {
        gone = true;
        for (const std::string& key : keys) {
          Op op = DoGet(id, member, key, false, lease);
          gone = gone && op.outcome == Outcome::kOk && !op.found;
          Record(std::move(op));
        }
      }
      if (gone) continue;
    }
    // Revoked even when stopping, so no key of the run lingers until its TTL.
    AdminOp rv;
    rv.kind = AdminOp::Kind::kLeaseRevoke;
    rv.client = id;
    rv.endpoint = client_->endpoint(member);
    rv.lease = lease;
    rv.invoke_ns = Now();
    try {
      pb::LeaseRevokeResponse resp = client_->LeaseRevoke(member, lease);
      rv.outcome = Outcome::kOk;
      rv.revision = resp.header().revision();
    } catch (const EtcdError& e) {
      rv.outcome = ClassifyError(e);
      rv.error = e.what();
    }
    rv.return_ns = Now();
    admin(std::move(rv));
    for (const std::string& key : keys) Record(DoGet(id, member, key, false, lease));
  }
}

ListOp Workload::DoList(int client, size_t member, const std::string& prefix) {
  ListOp l;
  l.id = next_id_.fetch_add(1);
  l.client = client;
  l.endpoint = client_->endpoint(member);
  l.key = prefix;
  l.range_end = PrefixEnd(prefix);
  pb::RangeRequest req;
  req.set_key(l.key);
  req.set_range_end(l.range_end);
  pb::RangeResponse resp;
  l.invoke_ns = Now();
  grpc::Status st = client_->TryRange(member, req, &resp, options_.op_timeout);
  l.return_ns = Now();
  if (st.ok()) {
    l.outcome = Outcome::kOk;
    l.revision = resp.header().revision();
    for (const auto& kv : resp.kvs()) l.kvs.push_back({kv.key(), kv.value(), kv.mod_revision()});
  } else {
    l.outcome = Outcome::kFailed;
    l.error = Describe(st);
  }
  return l;
}

// Like a Kubernetes API server: list, then create, update and delete with mod-revision
// preconditions; its watch (RunKubernetesWatch) starts from the first list's revision.
void Workload::RunKubernetes(int c) {
  faults::Rng rng = faults::Rng(options_.seed).Fork("workload.kubernetes." + std::to_string(c));
  const int id = KubernetesClientId(c);
  const size_t n = client_->size();
  const size_t member = static_cast<size_t>(c) % n;
  std::map<std::string, int64_t> known;  // key -> mod revision; absent: no object
  bool stale = true;
  int64_t seq = 0, since_list = 0;
  auto interval =
      options_.rate > 0
          ? std::chrono::nanoseconds(static_cast<int64_t>(1e9 * options_.clients / options_.rate))
          : std::chrono::nanoseconds(0);
  auto next = std::chrono::steady_clock::now();
  while (!stop_.load()) {
    if (interval.count() > 0) {
      if (!SleepUntil(next, stop_)) break;
      next = std::max(next + interval, std::chrono::steady_clock::now() - std::chrono::seconds(1));
    }
    if (stale || since_list >= 50) {
      ListOp l = DoList(id, member, k8s_prefix_);
      if (l.outcome == Outcome::kOk) {
        known.clear();
        for (const auto& kv : l.kvs) known[kv.key] = kv.mod_revision;
        stale = false;
        since_list = 0;
        if (k8s_list_rev_[c].load() == 0) k8s_list_rev_[c] = l.revision;
      }
      std::lock_guard<std::mutex> lock(log_.mu);
      log_.lists.push_back(std::move(l));
      continue;
    }
    ++since_list;
    const std::string key =
        k8s_prefix_ + "obj-" + std::to_string(rng.Below(options_.kubernetes.objects));
    auto it = known.find(key);
    const int64_t expect = it == known.end() ? 0 : it->second;
    const bool remove = expect != 0 && rng.Below(10) < 3;
    Op op = NewOp(id, member, remove ? OpType::kDelete : OpType::kCas, key);
    op.cas_on = CasOn::kModRevision;
    op.expect_mod_revision = expect;
    op.conditional = remove;
    pb::TxnRequest req;
    pb::Compare* cmp = req.add_compare();
    cmp->set_key(key);
    cmp->set_result(pb::Compare::EQUAL);
    cmp->set_target(pb::Compare::MOD);
    cmp->set_mod_revision(expect);
    if (remove) {
      req.add_success()->mutable_request_delete_range()->set_key(key);
    } else {
      op.value = "k8s" + std::to_string(c) + "-" + std::to_string(seq++);
      auto* put = req.add_success()->mutable_request_put();
      put->set_key(key);
      put->set_value(op.value);
    }
    req.add_failure()->mutable_request_range()->set_key(key);
    pb::TxnResponse resp;
    op.invoke_ns = Now();
    grpc::Status st = client_->TryTxn(member, req, &resp, options_.op_timeout);
    op.return_ns = Now();
    if (st.ok()) {
      op.revision = resp.header().revision();
      op.succeeded = resp.succeeded();
      if (op.succeeded && remove) {
        op.deleted =
            resp.responses_size() > 0 ? resp.responses(0).response_delete_range().deleted() : 0;
        known.erase(key);
      } else if (op.succeeded) {
        known[key] = op.revision;
      } else {
        const pb::RangeResponse& cur = resp.responses(0).response_range();
        if (remove) {
          op.found = cur.kvs_size() > 0;
          if (op.found) {
            op.read_value = cur.kvs(0).value();
            op.read_mod_revision = cur.kvs(0).mod_revision();
          }
        }
        if (cur.kvs_size() > 0) {
          known[key] = cur.kvs(0).mod_revision();
        } else {
          known.erase(key);
        }
      }
    } else {
      stale = true;  // relist, as an informer does after an error
    }
    Finish(op, st);
    Record(std::move(op));
  }
}

void Workload::RunKubernetesWatch(int c) {
  WatcherOptions w;
  w.prev_kv = true;  // as the API server watches
  const size_t member = static_cast<size_t>(c) % client_->size();
  while (k8s_list_rev_[c].load() == 0) {
    if (!SleepUntil(std::chrono::steady_clock::now() + std::chrono::milliseconds(20),
                    stop_watch_)) {
      return;
    }
  }
  int gen = 0;
  int64_t start = k8s_list_rev_[c].load() + 1;
  while (!stop_watch_.load()) {
    const std::string name =
        "k8s" + std::to_string(c) + "/" + client_->endpoint(member) + "#" + std::to_string(gen++);
    if (RunWatch(member, name, "list", start, k8s_prefix_, w, kForever, -1) == WatchEnd::kStopped) {
      break;
    }
    // Compacted away: as an informer would, start over from the newest list.
    SleepUntil(std::chrono::steady_clock::now() + std::chrono::milliseconds(500), stop_watch_);
    int64_t cur = CurrentRevision(member);
    if (cur > 0) start = cur + 1;
  }
}

void Workload::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> lock(stop_mu_);  // no sleeper misses the wake-up
    stop_.store(true);
  }
  stop_cv_.notify_all();
  for (auto& t : threads_) t.join();
  {
    std::lock_guard<std::mutex> lock(log_.mu);
    per_client_.push_back(std::move(log_.ops));
  }
  int64_t max_rev = start_revision_;
  for (auto& ops : per_client_) {
    for (Op& op : ops) {
      if (op.outcome == Outcome::kOk) max_rev = std::max(max_rev, op.revision);
      history_.ops.push_back(std::move(op));
    }
  }
  std::sort(history_.ops.begin(), history_.ops.end(),
            [](const Op& a, const Op& b) { return a.invoke_ns < b.invoke_ns; });
  if (options_.final_read) {
    for (int k = 0; k < options_.keys; ++k) {
      std::string key = options_.prefix + "k" + std::to_string(k);
      for (size_t i = 0; i < client_->size(); ++i) {
        pb::RangeRequest req;
        req.set_key(key);
        pb::RangeResponse resp;
        if (!client_->TryRange(i, req, &resp, options_.client.timeout).ok()) continue;
        History::Final f;
        f.key = key;
        f.present = resp.kvs_size() > 0;
        if (f.present) {
          f.value = resp.kvs(0).value();
          f.mod_revision = resp.kvs(0).mod_revision();
        }
        max_rev = std::max(max_rev, resp.header().revision());
        history_.final_reads.push_back(f);
        break;
      }
    }
  }
  // Give watchers a bounded time to deliver every change made under their prefix, then ask the
  // ones that have for a progress notification, so what each was brought up to is on record.
  // Progress is asked only after the events arrived: an etcd may answer RequestProgress with its
  // current revision before a lagging watcher has caught up.
  std::map<std::string, int64_t> last_change;  // prefix -> revision of its last change
  auto note = [&](const std::string& key, int64_t rev) {
    for (const std::string& p : {options_.prefix, k8s_prefix_}) {
      if (key.compare(0, p.size(), p) == 0) last_change[p] = std::max(last_change[p], rev);
    }
  };
  // Only ops that changed the store: a failed compare or a delete of nothing answers with the
  // store's revision, which another prefix's write may have made — a watcher of this prefix never
  // gets an event there, would never count as caught up, and was never asked for progress.
  for (const Op& op : history_.ops) {
    if (op.outcome == Outcome::kOk && op.ChangedTheStore()) note(op.key, op.revision);
  }
  {
    std::lock_guard<std::mutex> lock(log_.mu);
    for (const AdminOp& a : log_.admin) {
      if (a.kind == AdminOp::Kind::kLeaseRevoke) note(options_.prefix, a.revision);
    }
  }
  auto owed = [&](const Stream& st) {
    auto it = last_change.find(st.prefix);
    return it == last_change.end() ? int64_t{0} : it->second;
  };
  auto caught_up = [&](const Stream& st) { return st.event_reached.load() >= owed(st); };
  auto wait_for = [&](auto done, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      bool all = true;
      {
        std::lock_guard<std::mutex> lock(streams_mu_);
        for (auto& st : streams_) all = all && done(*st);
      }
      if (all) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  wait_for(caught_up, std::chrono::seconds(5));
  const int64_t store_rev = std::max(max_rev, CurrentRevision(0));
  std::set<const Stream*> asked;  // a reopened watcher may add a stream meanwhile
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    for (auto& st : streams_) {
      if (caught_up(*st) && st->RequestProgress()) asked.insert(&*st);
    }
  }
  wait_for([&](const Stream& st) { return !caught_up(st) || st.reached.load() >= store_rev; },
           std::chrono::seconds(1));
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    for (const auto& st : streams_) {
      streams_at_end_.push_back({st->prefix, owed(*st), st->event_reached.load(),
                                 st->reached.load(), asked.count(&*st) > 0});
    }
    {
      std::lock_guard<std::mutex> stop_lock(stop_mu_);
      stop_watch_.store(true);
    }
    for (auto& st : streams_) st->ctx->TryCancel();
  }
  stop_cv_.notify_all();
  for (auto& t : watchers_) t.join();
  std::lock_guard<std::mutex> lock(log_.mu);
  history_.watch_events = std::move(log_.events);
  history_.watch_progress = std::move(log_.progress);
  history_.watch_opens = std::move(log_.opens);
  history_.admin = std::move(log_.admin);
  history_.lists = std::move(log_.lists);
  auto by_invoke = [](const auto& a, const auto& b) { return a.invoke_ns < b.invoke_ns; };
  std::stable_sort(history_.admin.begin(), history_.admin.end(), by_invoke);
  std::stable_sort(history_.lists.begin(), history_.lists.end(), by_invoke);
  std::stable_sort(history_.watch_opens.begin(), history_.watch_opens.end(), by_invoke);
}

}  // namespace faultline::verify
