#include "experiments/etcd_version.h"

#include <charconv>
#include <stdexcept>

namespace faultline::experiments {
namespace {

// Reads "N" at the front of `s`; advances `s` past it.
std::optional<int> Number(std::string_view& s) {
  int n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end == s.data() || n < 0) return std::nullopt;
  s.remove_prefix(end - s.data());
  return n;
}

// "3.5.16" (all three parts) or, with `allow_minor_only`, "3.5" (patch -1: any).
std::optional<EtcdVersion> Parse(std::string_view s, bool allow_minor_only) {
  if (!s.empty() && s.front() == 'v') s.remove_prefix(1);
  EtcdVersion v;
  auto major = Number(s);
  if (!major || s.empty() || s.front() != '.') return std::nullopt;
  s.remove_prefix(1);
  auto minor = Number(s);
  if (!minor) return std::nullopt;
  v.major = *major;
  v.minor = *minor;
  if (s.empty() && allow_minor_only) {
    v.patch = -1;
    return v;
  }
  if (s.empty() || s.front() != '.') return std::nullopt;
  s.remove_prefix(1);
  auto patch = Number(s);
  if (!patch) return std::nullopt;
  v.patch = *patch;
  // A Debian revision or binNMU suffix; anything else (a pre-release "-rc.1" is also "-") ends
  // the version as well, since etcd's pre-releases never ship in Debian.
  if (!s.empty() && s.front() != '-' && s.front() != '+' && s.front() != '~') return std::nullopt;
  return v;
}

}  // namespace

std::string EtcdVersion::ToString() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

std::optional<EtcdVersion> ParseEtcdVersion(std::string_view text) { return Parse(text, false); }

std::optional<EtcdVersion> ParseEtcdVersionOutput(std::string_view output) {
  constexpr std::string_view kTag = "etcd Version:";
  auto at = output.find(kTag);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = output.substr(at + kTag.size());
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  auto end = rest.find_first_of(" \r\n");
  return ParseEtcdVersion(rest.substr(0, end));
}

VersionRange VersionRange::Parse(std::string_view text) {
  VersionRange r;
  r.text_ = std::string(text);
  std::vector<Term> terms;
  auto close = [&](bool last) {
    if (terms.empty()) {
      // "a ||" or "|| b": an empty alternative would hold every version, surely not meant.
      if (!last || !r.alternatives_.empty()) {
        throw std::invalid_argument("an alternative of \"" + r.text_ + "\" is empty");
      }
      return;
    }
    r.alternatives_.push_back(std::move(terms));
    terms.clear();
  };
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ' || text[i] == ',') {
      ++i;
      continue;
    }
    if (text.substr(i, 2) == "||") {
      close(false);
      i += 2;
      continue;
    }
    size_t end = text.find_first_of(" ,|", i);
    std::string_view part = text.substr(i, end == std::string_view::npos ? end : end - i);
    i = end == std::string_view::npos ? text.size() : end;
    Op op = Op::kEq;
    std::string_view v = part;
    for (auto [prefix, o] : {std::pair{"<=", Op::kLe},
                             {">=", Op::kGe},
                             {"<", Op::kLt},
                             {">", Op::kGt},
                             {"=", Op::kEq}}) {
      if (v.starts_with(prefix)) {
        op = o;
        v.remove_prefix(std::string_view(prefix).size());
        break;
      }
    }
    auto parsed = experiments::Parse(v, op == Op::kEq);
    if (!parsed) {
      throw std::invalid_argument("\"" + std::string(part) +
                                  "\" is not a version comparison (want e.g. <3.5.18, >=3.5.0, "
                                  "3.4.23 or 3.5, alternatives joined by ||)");
    }
    if (parsed->patch < 0) {
      // "3.5": every 3.5.x.
      terms.push_back({Op::kGe, {parsed->major, parsed->minor, 0}});
      terms.push_back({Op::kLt, {parsed->major, parsed->minor + 1, 0}});
    } else {
      terms.push_back({op, *parsed});
    }
  }
  close(true);
  return r;
}

bool VersionRange::Contains(const EtcdVersion& v) const {
  if (alternatives_.empty()) return true;
  for (const auto& terms : alternatives_) {
    bool all = true;
    for (const auto& t : terms) {
      switch (t.op) {
        case Op::kLt:
          all = all && v < t.v;
          break;
        case Op::kLe:
          all = all && v <= t.v;
          break;
        case Op::kGt:
          all = all && v > t.v;
          break;
        case Op::kGe:
          all = all && v >= t.v;
          break;
        case Op::kEq:
          all = all && v == t.v;
          break;
      }
    }
    if (all) return true;
  }
  return false;
}

std::string VersionRangeError(std::string_view text) {
  try {
    VersionRange::Parse(text);
    return "";
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
}

}  // namespace faultline::experiments
