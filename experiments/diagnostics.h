#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace faultline::experiments {

// One problem in an experiment file, located by file:line:column (1-based; 0 when unknown) and
// the field path inside the document (e.g. "spec.steps[1].fault.process.signal").
struct Diagnostic {
  std::string file;
  int line = 0;
  int column = 0;
  std::string path;
  std::string message;

  // "exp.yaml:12:7: spec.steps[1].fault.process.signal: must be 1..64"
  std::string ToString() const;
};
using Diagnostics = std::vector<Diagnostic>;

// Every diagnostic, one per line.
std::string FormatDiagnostics(const Diagnostics& d);

// Thrown by the loading functions that return experiments directly; holds every error found.
class LoadError : public std::runtime_error {
 public:
  explicit LoadError(Diagnostics d)
      : std::runtime_error(FormatDiagnostics(d)), diagnostics_(std::move(d)) {}
  const Diagnostics& diagnostics() const { return diagnostics_; }

 private:
  Diagnostics diagnostics_;
};

}  // namespace faultline::experiments
