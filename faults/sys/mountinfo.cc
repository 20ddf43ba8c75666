#include "faults/sys/mountinfo.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace faultline::sys {

std::string UnescapeMountField(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto octal = [&](size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '7'; };
    if (s[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<MountInfo> ParseMountInfo(std::string_view text) {
  std::vector<MountInfo> out;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream head(line.substr(0, dash));
    std::istringstream tail(line.substr(dash + 3));
    MountInfo m;
    std::string devno, root, point;
    if (!(head >> m.id >> m.parent >> devno >> root >> point >> m.options)) continue;
    if (std::sscanf(devno.c_str(), "%u:%u", &m.major, &m.minor) != 2) continue;
    std::string source;
    if (!(tail >> m.fstype >> source >> m.super_options)) continue;
    m.root = UnescapeMountField(root);
    m.mount_point = UnescapeMountField(point);
    m.source = UnescapeMountField(source);
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<MountInfo> ReadMountInfo(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return ParseMountInfo(text.str());
}

}  // namespace faultline::sys
