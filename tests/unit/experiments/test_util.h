#pragma once

#include <google/protobuf/descriptor.h>

#include <string>

#include "experiments/loader.h"

namespace faultline::experiments::testing {

// Every diagnostic as "file:line:col: path: message", one per line, for assertions and failures.
inline std::string All(const LoadResult& r) { return FormatDiagnostics(r.errors); }

// The skeleton's family protos hold only their action (and io's mount) until the family's
// engineer fills them; mappings onto their fields can only be checked once they are filled.
inline bool IsStub(const google::protobuf::Descriptor* d) { return d->field_count() <= 2; }

}  // namespace faultline::experiments::testing
