#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace faultline::sys {

// One line of /proc/<pid>/mountinfo (proc(5)): "id parent major:minor root mount-point options
// [optional...] - fstype source super-options". Paths are unescaped (the kernel writes ' ', '\t',
// '\n' and '\\' as octal \040 ...).
struct MountInfo {
  int id = 0;
  int parent = 0;
  unsigned major = 0;
  unsigned minor = 0;
  std::string root;
  std::string mount_point;
  std::string options;
  std::string fstype;
  std::string source;
  std::string super_options;
};

// Every well-formed line of `text`; malformed lines are skipped.
std::vector<MountInfo> ParseMountInfo(std::string_view text);
// The mounts this process sees (/proc/self/mountinfo); empty if it cannot be read.
std::vector<MountInfo> ReadMountInfo(const std::string& path = "/proc/self/mountinfo");
// "\040" -> " ": mountinfo's octal escapes.
std::string UnescapeMountField(std::string_view field);

}  // namespace faultline::sys
