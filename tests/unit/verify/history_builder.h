#pragma once

#include <optional>
#include <string>

#include "controller/verify/history.h"

namespace faultline::verify::testing {

// Builds hand-made histories: times are in microseconds, ids are assigned in call order.
class HistoryBuilder {
 public:
  Op& Put(int client, const std::string& key, const std::string& value, int64_t t0, int64_t t1,
          int64_t rev, Outcome o = Outcome::kOk);
  // `value` empty: the read found nothing.
  Op& Get(int client, const std::string& key, int64_t t0, int64_t t1,
          std::optional<std::string> value, int64_t mod_rev = 0, int64_t rev = 0);
  // expect empty: the key must be absent.
  Op& Cas(int client, const std::string& key, std::optional<std::string> expect,
          const std::string& value, int64_t t0, int64_t t1, bool succeeded, int64_t rev,
          Outcome o = Outcome::kOk);
  Op& Del(int client, const std::string& key, int64_t t0, int64_t t1, int64_t deleted, int64_t rev,
          Outcome o = Outcome::kOk);
  History& history() { return h_; }

 private:
  Op& Add(Op op, int client, const std::string& key, int64_t t0, int64_t t1, Outcome o);
  History h_;
};

}  // namespace faultline::verify::testing
