#pragma once

#include <google/protobuf/generated_enum_reflection.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace google::protobuf {
class EnumDescriptor;
}

namespace faultline::faults {

// The names people type for a spec enum's values, made from the proto descriptor so the CLI,
// descriptions and fault kinds share one table per enum and a value added to a proto is named at
// once: lowercase, '-' for '_', and the enum's own name dropped where the value starts with it
// (NetFault.Protocol PROTOCOL_ANY is "any"). Placeholders (*_UNSPECIFIED) have no name.
struct EnumName {
  std::string name;
  int number = 0;
};
std::vector<EnumName> EnumNames(const google::protobuf::EnumDescriptor* e);
// The name of `number`, or "unspecified" for a placeholder or an unknown number.
std::string EnumValueName(const google::protobuf::EnumDescriptor* e, int number);
// The value named `text` (case-insensitive; '_' and '-' alike), or nullopt.
std::optional<int> ParseEnumName(const google::protobuf::EnumDescriptor* e, std::string_view text);
// "a, b or c": for error messages.
std::string EnumChoices(const google::protobuf::EnumDescriptor* e);

template <typename E>
std::string NameOf(E value) {
  return EnumValueName(google::protobuf::GetEnumDescriptor<E>(), static_cast<int>(value));
}

template <typename E>
std::optional<E> ParseName(std::string_view text) {
  auto n = ParseEnumName(google::protobuf::GetEnumDescriptor<E>(), text);
  if (!n) return std::nullopt;
  return static_cast<E>(*n);
}

template <typename E>
std::vector<std::pair<std::string, E>> Names() {
  std::vector<std::pair<std::string, E>> out;
  for (auto& n : EnumNames(google::protobuf::GetEnumDescriptor<E>())) {
    out.emplace_back(std::move(n.name), static_cast<E>(n.number));
  }
  return out;
}

template <typename E>
std::string Choices() {
  return EnumChoices(google::protobuf::GetEnumDescriptor<E>());
}

}  // namespace faultline::faults
