#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "faults/core/fault.h"

namespace faultline::faults {

// The fault families an agent can serve, by family name.
class Registry {
 public:
  void Add(std::unique_ptr<FaultFactory> factory);
  // nullptr if the family is not registered.
  const FaultFactory* Find(std::string_view family) const;
  std::vector<std::string> Families() const;

  // Common checks (a family is set and registered, duration not negative) plus the family's own.
  FieldErrors Validate(const v1::FaultSpec& spec) const;
  // Validate, then create; throws ValidationError listing every problem.
  std::unique_ptr<Fault> Create(const v1::FaultSpec& spec, const FaultContext& ctx) const;

  const std::map<std::string, std::unique_ptr<FaultFactory>, std::less<>>& factories() const {
    return factories_;
  }

 private:
  std::map<std::string, std::unique_ptr<FaultFactory>, std::less<>> factories_;
};

}  // namespace faultline::faults
