#include "cli/output.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <chrono>

#include "faults/core/duration.h"

namespace faultline::cli {

std::string Table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (size_t i = 0; i < cells.size(); ++i) {
      l += cells[i];
      if (i + 1 < cells.size()) l += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    out += l + "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
  return out;
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  return out;
}

std::string Relative(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  auto when = std::chrono::system_clock::time_point(std::chrono::seconds(ts.seconds()) +
                                                    std::chrono::nanoseconds(ts.nanos()));
  auto d = std::chrono::round<std::chrono::seconds>(when - std::chrono::system_clock::now());
  if (d.count() >= 0) return "in " + faults::FormatDuration(d);
  return faults::FormatDuration(-d) + " ago";
}

std::string FaultTable(const std::vector<v1::FaultStatus>& faults) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : faults) {
    std::string state = v1::FaultStatus::State_Name(f.state());
    std::transform(state.begin(), state.end(), state.begin(), ::tolower);
    std::string ends = f.state() == v1::FaultStatus::ACTIVE
                           ? Relative(f.ends_at().seconds() ? f.ends_at() : f.lease_expires_at())
                           : f.revert_reason();
    std::string desc = f.description();
    if (!f.error().empty()) desc += " [" + f.error() + "]";
    rows.push_back({f.id(), f.kind(), state, ends, desc});
  }
  return Table({"ID", "KIND", "STATE", "ENDS", "DESCRIPTION"}, rows);
}

}  // namespace faultline::cli
