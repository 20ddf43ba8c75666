#pragma once

#include <string>
#include <string_view>

namespace faultline::faults::io {

// Path globs for IO rules. Paths are relative to the overlay root, '/'-separated, without a
// leading slash ("member/wal/0.wal"; the root itself is ""). `*` and `?` never cross a '/',
// `**` as a whole segment spans any number of segments (including none), `[a-z]`/`[!x]` are
// classes. A pattern without '/' is matched against the base name, so "*.wal" means "every
// .wal file at any depth" the way people write it in .gitignore. Empty pattern: everything.
bool GlobMatch(std::string_view pattern, std::string_view path);

// "" if the pattern is well formed, else why not (unterminated class, empty segment, ...).
std::string GlobError(std::string_view pattern);

}  // namespace faultline::faults::io
