#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace google::protobuf {
class Duration;
}

namespace faultline::faults {

// Parses Go/Kubernetes-style durations: "300ms", "1.5s", "1m30s", "2h", "10us", "0".
// A bare number is refused (ambiguous unit). Returns nullopt and sets *why on bad input.
std::optional<std::chrono::nanoseconds> ParseDuration(std::string_view text,
                                                      std::string* why = nullptr);

// Shortest readable form: "1m30s", "250ms", "0s".
std::string FormatDuration(std::chrono::nanoseconds d);

std::chrono::nanoseconds FromProto(const google::protobuf::Duration& d);
void ToProto(std::chrono::nanoseconds d, google::protobuf::Duration* out);

}  // namespace faultline::faults
