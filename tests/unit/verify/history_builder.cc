#include "tests/unit/verify/history_builder.h"

namespace faultline::verify::testing {

Op& HistoryBuilder::Add(Op op, int client, const std::string& key, int64_t t0, int64_t t1,
                        Outcome o) {
  op.id = static_cast<int64_t>(h_.ops.size());
  op.client = client;
  op.endpoint = "m" + std::to_string(client % 3);
  op.key = key;
  op.invoke_ns = t0 * 1000;
  op.return_ns = t1 * 1000;
  op.outcome = o;
  if (o != Outcome::kOk) op.error = "test";
  h_.ops.push_back(std::move(op));
  return h_.ops.back();
}

Op& HistoryBuilder::Put(int client, const std::string& key, const std::string& value, int64_t t0,
                        int64_t t1, int64_t rev, Outcome o) {
  Op op;
  op.type = OpType::kPut;
  op.value = value;
  op.revision = o == Outcome::kOk ? rev : 0;
  return Add(op, client, key, t0, t1, o);
}

Op& HistoryBuilder::Get(int client, const std::string& key, int64_t t0, int64_t t1,
                        std::optional<std::string> value, int64_t mod_rev, int64_t rev) {
  Op op;
  op.type = OpType::kGet;
  op.found = value.has_value();
  op.read_value = value.value_or("");
  op.read_mod_revision = mod_rev;
  op.revision = rev;
  return Add(op, client, key, t0, t1, Outcome::kOk);
}

Op& HistoryBuilder::Cas(int client, const std::string& key, std::optional<std::string> expect,
                        const std::string& value, int64_t t0, int64_t t1, bool succeeded,
                        int64_t rev, Outcome o) {
  Op op;
  op.type = OpType::kCas;
  op.expect_absent = !expect.has_value();
  op.expect_value = expect.value_or("");
  op.value = value;
  op.succeeded = succeeded;
  op.revision = rev;
  return Add(op, client, key, t0, t1, o);
}

Op& HistoryBuilder::Del(int client, const std::string& key, int64_t t0, int64_t t1, int64_t deleted,
                        int64_t rev, Outcome o) {
  Op op;
  op.type = OpType::kDelete;
  op.deleted = deleted;
  op.revision = rev;
  return Add(op, client, key, t0, t1, o);
}

}  // namespace faultline::verify::testing
