#pragma once

#include <filesystem>
#include <string>

namespace faultline::sys {

// Writes `content` to `path` via a temporary file next to it, fsync, rename and an fsync of the
// directory, so a crash leaves the old or the new content, never a torn file. Throws
// std::runtime_error naming the file and the errno text.
void WriteFileAtomic(const std::filesystem::path& path, const std::string& content);

}  // namespace faultline::sys
