#pragma once

// etcd versions and version ranges: which builds a bug affects, which an experiment targets, which
// the lab runs. Debian suites move (sid will serve a later 3.5 one day), so everything that names
// versions names ranges ("<3.5.18"), never the exact string a suite serves today.

#include <compare>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace faultline::experiments {

struct EtcdVersion {
  int major = 0, minor = 0, patch = 0;
  auto operator<=>(const EtcdVersion&) const = default;
  std::string ToString() const;
};

// "3.5.16", "v3.5.16", "3.5.16-4" (a Debian package version: the revision is dropped) and
// "3.5.16+b4". nullopt for anything else.
std::optional<EtcdVersion> ParseEtcdVersion(std::string_view text);

// The version `etcd --version` prints ("etcd Version: 3.5.16"); nullopt if there is none.
std::optional<EtcdVersion> ParseEtcdVersionOutput(std::string_view output);

// Comparisons separated by spaces or commas must all hold (">=3.5.0 <3.5.18", "<3.4.24", "=3.4.23"
// or "3.4.23" exact, "3.5" any 3.5.x); "||" joins alternatives, since fixes land per release line:
// "<3.4.25 || >=3.5.0 <3.5.8". The empty range holds every version.
class VersionRange {
 public:
  // Throws std::invalid_argument naming the part that is not a comparison.
  static VersionRange Parse(std::string_view text);
  bool Contains(const EtcdVersion& v) const;
  bool empty() const { return alternatives_.empty(); }
  const std::string& text() const { return text_; }

 private:
  enum class Op { kLt, kLe, kGt, kGe, kEq };
  struct Term {
    Op op;
    EtcdVersion v;
  };
  std::vector<std::vector<Term>> alternatives_;  // any of them, each all of its terms
  std::string text_;
};

// Empty when `text` is a valid range, else the reason (for validation messages).
std::string VersionRangeError(std::string_view text);

}  // namespace faultline::experiments
