#include "faults/io/glob.h"

#include <vector>

namespace faultline::faults::io {
namespace {

// Matches one segment (no '/') against a segment pattern with *, ? and classes.
bool MatchSegment(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0;
  size_t star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star_p = pi++;
      star_s = si;
      continue;
    }
    if (pi < p.size()) {
      if (p[pi] == '?') {
        ++pi;
        ++si;
        continue;
      }
      if (p[pi] == '[') {
        size_t end = p.find(']', pi + 2);
        if (end != std::string_view::npos) {
          bool negate = p[pi + 1] == '!' || p[pi + 1] == '^';
          size_t k = pi + 1 + (negate ? 1 : 0);
          bool hit = false;
          for (; k < end; ++k) {
            if (k + 2 < end && p[k + 1] == '-') {
              if (s[si] >= p[k] && s[si] <= p[k + 2]) hit = true;
              k += 2;
            } else if (p[k] == s[si]) {
              hit = true;
            }
          }
          if (hit != negate) {
            pi = end + 1;
            ++si;
            continue;
          }
        }
      } else if (p[pi] == s[si]) {
        ++pi;
        ++si;
        continue;
      }
    }
    // Mismatch: let the last '*' swallow one more character, or fail.
    if (star_p == std::string_view::npos) return false;
    pi = star_p + 1;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  if (s.empty()) return out;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    out.push_back(s.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

bool MatchSegments(const std::vector<std::string_view>& p, size_t pi,
                   const std::vector<std::string_view>& s, size_t si) {
  while (pi < p.size()) {
    if (p[pi] == "**") {
      // Collapse runs of "**" and try every split point.
      while (pi + 1 < p.size() && p[pi + 1] == "**") ++pi;
      if (pi + 1 == p.size()) return true;
      for (size_t k = si; k <= s.size(); ++k) {
        if (MatchSegments(p, pi + 1, s, k)) return true;
      }
      return false;
    }
    if (si >= s.size() || !MatchSegment(p[pi], s[si])) return false;
    ++pi;
    ++si;
  }
  return si == s.size();
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view path) {
  if (pattern.empty() || pattern == "**") return true;
  while (!pattern.empty() && pattern.front() == '/') pattern.remove_prefix(1);
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (pattern.find('/') == std::string_view::npos) {
    size_t slash = path.rfind('/');
    std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
    return MatchSegment(pattern, base);
  }
  return MatchSegments(Split(pattern), 0, Split(path), 0);
}

std::string GlobError(std::string_view pattern) {
  std::string_view p = pattern;
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  if (p.find("//") != std::string_view::npos) return "empty path segment (\"//\")";
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '[') {
      size_t end = p.find(']', i + 2);
      if (end == std::string_view::npos ||
          p.substr(i, end - i).find('/') != std::string_view::npos) {
        return "unterminated character class at offset " + std::to_string(i);
      }
      i = end;
    }
  }
  for (auto seg : Split(p)) {
    if (seg.find("**") != std::string_view::npos && seg != "**") {
      return "\"**\" must be a whole path segment (got \"" + std::string(seg) + "\")";
    }
    if (seg == "." || seg == "..") return "\".\" and \"..\" segments are not allowed";
  }
  return "";
}

}  // namespace faultline::faults::io
