#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <string_view>

#include "experiments/diagnostics.h"

namespace google::protobuf {
class Message;
}

namespace faultline::experiments {

// Collects the diagnostics of one file and remembers where each field path was written, so
// checks made after reading can still point at the right line.
class Reporter {
 public:
  explicit Reporter(std::string file) : file_(std::move(file)) {}

  void Error(const YAML::Mark& at, std::string path, std::string message);
  void Error(const YAML::Node& at, std::string path, std::string message) {
    Error(at.Mark(), std::move(path), std::move(message));
  }
  // Something the user should know that is not an error (e.g. an old spelling was mapped).
  void Note(const YAML::Node& at, std::string path, std::string message);
  // An error at the place `path` (or its nearest remembered parent) was written.
  void ErrorAt(const std::string& path, std::string message);

  void Remember(const std::string& path, const YAML::Mark& mark) { marks_[path] = mark; }
  // Errors about `from` (and paths under it) are reported as being about `to`: experiments
  // mapped from another format are checked as experiments but blamed on the source field.
  void Alias(const std::string& from, const std::string& to) { aliases_[from] = to; }
  std::string Resolve(const std::string& path) const;
  YAML::Mark Where(const std::string& path) const;

  const std::string& file() const { return file_; }
  const Diagnostics& diagnostics() const { return diagnostics_; }
  const Diagnostics& notes() const { return notes_; }
  size_t error_count() const { return diagnostics_.size(); }

 private:
  std::string file_;
  Diagnostics diagnostics_;
  Diagnostics notes_;
  std::map<std::string, YAML::Mark> marks_;
  std::map<std::string, std::string> aliases_;
};

// Fields a document may not write, by message full name then field name, with the reason
// (e.g. a fault's duration is written on its step, not inside the fault).
using ForbiddenFields = std::map<std::string, std::map<std::string, std::string>>;

// Fills `msg` from a YAML mapping by descriptor reflection, so the YAML format follows the protos
// as fields are added. Keys are a field's proto name or its lowerCamel JSON name; enums are
// matched by name case-insensitively ('-' reads as '_'); google.protobuf.Duration is written as
// "100ms"; repeated fields as lists; maps as mappings. Unknown keys, wrong types, bad enums and
// bad durations are reported (all of them) and never dropped. Fields named `percent`,
// `*_percent` or `correlation` must be within 0..100.
void ReadMessage(const YAML::Node& node, google::protobuf::Message* msg, const std::string& path,
                 Reporter& r, const ForbiddenFields& forbidden = {});

// Sets the field `field_name` (proto name) of `msg` from `value` the same way ReadMessage does.
// Errors are reported at `where` under `path`; a field this build's proto lacks is an error
// naming the message. Returns false on error.
bool SetField(google::protobuf::Message* msg, std::string_view field_name, const YAML::Node& value,
              const YAML::Mark& where, const std::string& path, Reporter& r);
// Same, from a value computed by the caller (an enum name, a number as text, ...).
bool SetFieldText(google::protobuf::Message* msg, std::string_view field_name,
                  const std::string& value, const YAML::Mark& where, const std::string& path,
                  Reporter& r);

// "scalar", "mapping", "list" or "null": for messages about a node of the wrong kind.
std::string NodeKind(const YAML::Node& node);

}  // namespace faultline::experiments
