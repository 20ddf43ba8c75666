#include "faults/core/registry.h"

#include <stdexcept>

#include "faults/core/duration.h"

namespace faultline::faults {

void Registry::Add(std::unique_ptr<FaultFactory> factory) {
  std::string family(factory->Family());
  if (!factories_.emplace(family, std::move(factory)).second) {
    throw std::logic_error("fault family registered twice: " + family);
  }
}

const FaultFactory* Registry::Find(std::string_view family) const {
  auto it = factories_.find(family);
  return it == factories_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Registry::Families() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : factories_) out.push_back(name);
  return out;
}

FieldErrors Registry::Validate(const v1::FaultSpec& spec) const {
  FieldErrors errors;
  if (FromProto(spec.duration()).count() < 0) {
    errors.push_back({"duration", "must not be negative"});
  }
  std::string family = FamilyOf(spec);
  if (family.empty()) {
    errors.push_back({"fault", "no fault kind given (one of: process, io, net, stress, syscall)"});
    return errors;
  }
  const FaultFactory* factory = Find(family);
  if (factory == nullptr) {
    std::string known;
    for (const auto& f : Families()) known += (known.empty() ? "" : ", ") + f;
    errors.push_back({family, "fault kind not supported by this agent (it serves: " + known + ")"});
    return errors;
  }
  auto own = factory->Validate(spec);
  errors.insert(errors.end(), own.begin(), own.end());
  return errors;
}

std::unique_ptr<Fault> Registry::Create(const v1::FaultSpec& spec, const FaultContext& ctx) const {
  auto errors = Validate(spec);
  if (!errors.empty()) throw ValidationError(std::move(errors));
  return Find(FamilyOf(spec))->Create(spec, ctx);
}

}  // namespace faultline::faults
