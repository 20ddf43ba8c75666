#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "experiments/loader.h"

namespace faultline::experiments::testing {

// Every diagnostic as "file:line:col: path: message", one per line, for assertions and failures.
inline std::string All(const LoadResult& r) { return FormatDiagnostics(r.errors); }

// The skeleton's family protos hold only their action (and io's mount) until the family's
// engineer fills them; mappings onto their fields can only be checked once they are filled.
inline bool IsStub(const google::protobuf::Descriptor* d) { return d->field_count() <= 2; }

}  // namespace faultline::experiments::testing

namespace faultline::experiments::testing {

// Field access by name, for fields the families' protos gain after this test was written (the
// generated accessors would not compile against the skeleton).
inline const google::protobuf::FieldDescriptor* F(const google::protobuf::Message& m,
                                                  const char* name) {
  const auto* f = m.GetDescriptor()->FindFieldByName(name);
  EXPECT_NE(f, nullptr) << m.GetDescriptor()->full_name() << " has no field " << name;
  return f;
}
inline std::string Str(const google::protobuf::Message& m, const char* name) {
  return m.GetReflection()->GetString(m, F(m, name));
}
inline double Dbl(const google::protobuf::Message& m, const char* name) {
  return m.GetReflection()->GetDouble(m, F(m, name));
}
inline uint64_t U64(const google::protobuf::Message& m, const char* name) {
  const auto* f = F(m, name);
  const auto* r = m.GetReflection();
  switch (f->cpp_type()) {
    case google::protobuf::FieldDescriptor::CPPTYPE_UINT32:
      return r->GetUInt32(m, f);
    case google::protobuf::FieldDescriptor::CPPTYPE_UINT64:
      return r->GetUInt64(m, f);
    default:
      return 0;
  }
}
inline std::chrono::milliseconds Ms(const google::protobuf::Message& m, const char* name) {
  const auto& d = m.GetReflection()->GetMessage(m, F(m, name));
  const auto* dr = d.GetReflection();
  const auto* dd = d.GetDescriptor();
  return std::chrono::milliseconds(dr->GetInt64(d, dd->FindFieldByName("seconds")) * 1000 +
                                   dr->GetInt32(d, dd->FindFieldByName("nanos")) / 1000000);
}
inline std::vector<std::string> Strs(const google::protobuf::Message& m, const char* name) {
  std::vector<std::string> out;
  const auto* f = F(m, name);
  for (int i = 0; i < m.GetReflection()->FieldSize(m, f); ++i) {
    out.push_back(m.GetReflection()->GetRepeatedString(m, f, i));
  }
  return out;
}

}  // namespace faultline::experiments::testing
