#include "faults/core/names.h"

#include <google/protobuf/descriptor.h>

#include <cctype>

namespace faultline::faults {
namespace {

namespace pb = google::protobuf;

std::string Upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool IsPlaceholder(const pb::EnumValueDescriptor* v) {
  const std::string& n = v->name();
  return n.size() >= 12 && n.compare(n.size() - 12, 12, "_UNSPECIFIED") == 0;
}

// PROTOCOL_ANY of enum Protocol -> "any"; ENOSPC_AFTER -> "enospc-after".
std::string Spoken(const pb::EnumValueDescriptor* v) {
  std::string n = v->name();
  const std::string prefix = Upper(v->type()->name()) + "_";
  if (n.size() > prefix.size() && n.compare(0, prefix.size(), prefix) == 0) {
    n.erase(0, prefix.size());
  }
  for (auto& c : n) {
    c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return n;
}

std::string Canonical(std::string_view text) {
  std::string s(text);
  for (auto& c : s) {
    c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

}  // namespace

std::vector<EnumName> EnumNames(const pb::EnumDescriptor* e) {
  std::vector<EnumName> out;
  for (int i = 0; i < e->value_count(); ++i) {
    const auto* v = e->value(i);
    if (IsPlaceholder(v)) continue;
    out.push_back({Spoken(v), v->number()});
  }
  return out;
}

std::string EnumValueName(const pb::EnumDescriptor* e, int number) {
  const auto* v = e->FindValueByNumber(number);
  if (v == nullptr || IsPlaceholder(v)) return "unspecified";
  return Spoken(v);
}

std::optional<int> ParseEnumName(const pb::EnumDescriptor* e, std::string_view text) {
  const std::string want = Canonical(text);
  for (const auto& n : EnumNames(e)) {
    if (n.name == want) return n.number;
  }
  return std::nullopt;
}

std::string EnumChoices(const pb::EnumDescriptor* e) {
  auto names = EnumNames(e);
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i].name;
  }
  return out;
}

}  // namespace faultline::faults
