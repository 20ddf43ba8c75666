#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <vector>

#include "faultline/v1/agent.pb.h"

namespace faultline::cli {

enum class Format { kTable, kJson };

// A plain aligned text table (no colours: it is read in terminals and in CI logs alike).
std::string Table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows);

std::string ToJson(const google::protobuf::Message& m);

// One table row per fault: ID KIND STATE ENDS DESCRIPTION.
std::string FaultTable(const std::vector<v1::FaultStatus>& faults);

// "in 29s", "-", "3s ago".
std::string Relative(const google::protobuf::Timestamp& ts);

}  // namespace faultline::cli
