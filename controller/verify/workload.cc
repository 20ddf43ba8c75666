#include "controller/verify/workload.h"

#include <algorithm>
#include <map>
#include <optional>
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

Workload::Workload(WorkloadOptions options)
    : options_(std::move(options)), watcher_last_rev_(options_.endpoints.size()) {
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
  client_ = std::make_unique<EtcdClient>(options_.endpoints, options_.client);
  if (options_.prefix.empty()) {
    options_.prefix = "/faultline/workload/" + std::to_string(options_.seed) + "-" +
                      std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) +
                      "/";
  }
  per_client_.resize(options_.clients);
  per_watcher_.resize(client_->size());
}

Workload::~Workload() { Stop(); }

int64_t Workload::Now() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              t0_)
      .count();
}

void Workload::Start() {
  if (started_) return;
  // The model needs every key absent at the start, and watchers need a start revision.
  std::string last_error;
  bool found = false;
  for (size_t i = 0; i < client_->size() && !found; ++i) {
    try {
      pb::RangeRequest req;
      req.set_key(options_.prefix);
      req.set_range_end(PrefixEnd(options_.prefix));
      req.set_count_only(true);
      pb::RangeResponse resp = client_->Range(i, req);
      if (resp.count() > 0) {
        throw std::invalid_argument("workload.prefix: \"" + options_.prefix + "\" already holds " +
                                    std::to_string(resp.count()) + " keys");
      }
      start_revision_ = resp.header().revision();
      found = true;
    } catch (const EtcdError& e) {
      last_error = e.what();
    }
  }
  if (!found) throw std::runtime_error("workload: no endpoint answered: " + last_error);
  started_ = true;
  t0_ = std::chrono::steady_clock::now();
  for (auto& r : watcher_last_rev_) r = start_revision_;
  if (options_.watch) {
    for (size_t m = 0; m < client_->size(); ++m) {
      watchers_.emplace_back([this, m] { RunWatcher(m); });
    }
  }
  for (int c = 0; c < options_.clients; ++c) threads_.emplace_back([this, c] { RunClient(c); });
}

void Workload::RunClient(int c) {
  faults::Rng rng = faults::Rng(options_.seed).Fork("workload.client." + std::to_string(c));
  std::map<std::string, std::optional<std::string>> known;  // last value this client saw
  const int total =
      options_.put_weight + options_.get_weight + options_.cas_weight + options_.delete_weight;
  const size_t n = client_->size();
  size_t rr = static_cast<size_t>(c);
  int64_t seq = 0;
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
    Op op;
    op.id = next_id_.fetch_add(1);
    op.client = c;
    size_t member = options_.pinned ? static_cast<size_t>(c) % n : rr++ % n;
    op.endpoint = client_->endpoint(member);
    op.key = options_.prefix + "k" + std::to_string(rng.Below(options_.keys));
    int pick = static_cast<int>(rng.Below(total));
    if ((pick -= options_.put_weight) < 0) {
      op.type = OpType::kPut;
    } else if ((pick -= options_.get_weight) < 0) {
      op.type = OpType::kGet;
    } else if ((pick -= options_.cas_weight) < 0) {
      op.type = OpType::kCas;
    } else {
      op.type = OpType::kDelete;
    }
    grpc::Status st;
    switch (op.type) {
      case OpType::kPut: {
        op.value = next_value();
        pb::PutRequest req;
        req.set_key(op.key);
        req.set_value(op.value);
        pb::PutResponse resp;
        op.invoke_ns = Now();
        st = client_->TryPut(member, req, &resp, options_.op_timeout);
        op.return_ns = Now();
        if (st.ok()) {
          op.revision = resp.header().revision();
          known[op.key] = op.value;
        }
        break;
      }
      case OpType::kGet: {
        op.serializable = !options_.linearizable_reads;
        pb::RangeRequest req;
        req.set_key(op.key);
        req.set_serializable(op.serializable);
        pb::RangeResponse resp;
        op.invoke_ns = Now();
        st = client_->TryRange(member, req, &resp, options_.op_timeout);
        op.return_ns = Now();
        if (st.ok()) {
          op.revision = resp.header().revision();
          op.found = resp.kvs_size() > 0;
          if (op.found) {
            op.read_value = resp.kvs(0).value();
            op.read_mod_revision = resp.kvs(0).mod_revision();
            known[op.key] = op.read_value;
          } else {
            known[op.key] = std::nullopt;
          }
        }
        break;
      }
      case OpType::kCas: {
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
        pb::TxnResponse resp;
        op.invoke_ns = Now();
        st = client_->TryTxn(member, req, &resp, options_.op_timeout);
        op.return_ns = Now();
        if (st.ok()) {
          op.revision = resp.header().revision();
          op.succeeded = resp.succeeded();
          if (op.succeeded) {
            known[op.key] = op.value;
          } else if (resp.responses_size() == 1 &&
                     resp.responses(0).response_range().kvs_size() > 0) {
            known[op.key] = resp.responses(0).response_range().kvs(0).value();
          } else {
            known[op.key] = std::nullopt;
          }
        }
        break;
      }
      case OpType::kDelete: {
        pb::DeleteRangeRequest req;
        req.set_key(op.key);
        pb::DeleteRangeResponse resp;
        op.invoke_ns = Now();
        st = client_->TryDeleteRange(member, req, &resp, options_.op_timeout);
        op.return_ns = Now();
        if (st.ok()) {
          op.revision = resp.header().revision();
          op.deleted = resp.deleted();
          known[op.key] = std::nullopt;
        }
        break;
      }
    }
    if (st.ok()) {
      op.outcome = Outcome::kOk;
    } else {
      op.outcome = op.type == OpType::kGet ? Outcome::kFailed : ClassifyWriteError(st);
      op.error = Describe(st);
      known.erase(op.key);
    }
    ops.push_back(std::move(op));
    ops_done_.fetch_add(1);
  }
}

void Workload::RunWatcher(size_t m) {
  int64_t next_rev = start_revision_ + 1;
  const std::string watcher = client_->endpoint(m);
  while (!stop_watch_.load()) {
    auto ctx = std::make_shared<grpc::ClientContext>();
    {
      std::lock_guard<std::mutex> lock(watch_mu_);
      if (stop_watch_.load()) break;
      watch_ctx_.push_back(ctx);
    }
    auto stream = client_->watch(m).Watch(ctx.get());
    pb::WatchRequest req;
    pb::WatchCreateRequest* create = req.mutable_create_request();
    create->set_key(options_.prefix);
    create->set_range_end(PrefixEnd(options_.prefix));
    create->set_start_revision(next_rev);
    if (stream->Write(req)) {
      pb::WatchResponse resp;
      while (stream->Read(&resp)) {
        if (resp.canceled()) break;
        for (const auto& ev : resp.events()) {
          WatchEvent e;
          e.watcher = watcher;
          e.revision = ev.kv().mod_revision();
          e.key = ev.kv().key();
          e.is_delete = ev.type() == mvccpb::Event::DELETE;
          e.value = ev.kv().value();
          e.recv_ns = Now();
          next_rev = std::max(next_rev, e.revision + 1);
          per_watcher_[m].push_back(std::move(e));
          watcher_last_rev_[m].store(next_rev - 1);
        }
      }
    }
    ctx->TryCancel();
    stream->Finish();
    if (!stop_watch_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void Workload::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  stop_.store(true);
  for (auto& t : threads_) t.join();
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
  // Give watchers a bounded time to deliver everything up to the last revision written.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    bool caught_up = true;
    for (size_t m = 0; m < watchers_.size(); ++m) {
      caught_up = caught_up && watcher_last_rev_[m].load() >= max_rev;
    }
    if (caught_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    stop_watch_.store(true);
    for (auto& ctx : watch_ctx_) ctx->TryCancel();
  }
  for (auto& t : watchers_) t.join();
  for (auto& events : per_watcher_) {
    for (auto& e : events) history_.watch_events.push_back(std::move(e));
  }
}

}  // namespace faultline::verify
