#include "faults/syscall/spec.h"

#include <seccomp.h>
#include <string.h>

#include <algorithm>
#include <charconv>
#include <string>

#include "faults/core/duration.h"

namespace faultline::faults::syscalls {

std::optional<int> ResolveSyscall(std::string_view name) {
  if (name.empty()) return std::nullopt;
  int nr = seccomp_syscall_resolve_name(std::string(name).c_str());
  if (nr == __NR_SCMP_ERROR || nr < 0) return std::nullopt;
  return nr;
}

std::optional<int> ParseErrno(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc() && ptr == text.data() + text.size()) {
    if (value >= 1 && value <= 4095) return value;
    return std::nullopt;
  }
  for (int e = 1; e < 4096; ++e) {
    const char* n = strerrorname_np(e);
    if (n != nullptr && text == n) return e;
  }
  return std::nullopt;
}

bool NeverIntercepted(std::string_view name) {
  static constexpr std::string_view kNever[] = {
      "execve", "execveat", "exit", "exit_group", "rt_sigreturn", "restart_syscall",
      // The loader's own calls between installing the filter and exec.
      "sendmsg", "close"};
  return std::find(std::begin(kNever), std::end(kNever), name) != std::end(kNever);
}

FieldErrors ValidateSpec(const v1::FaultSpec& spec) {
  FieldErrors e;
  const auto& f = spec.syscall();
  if (f.managed().empty()) e.push_back({"syscall.managed", "required: a managed process name"});
  if (f.syscalls_size() == 0) {
    e.push_back({"syscall.syscalls", "required: at least one syscall name, e.g. fdatasync"});
  }
  for (int i = 0; i < f.syscalls_size(); ++i) {
    const std::string field = "syscall.syscalls[" + std::to_string(i) + "]";
    if (!ResolveSyscall(f.syscalls(i))) {
      e.push_back({field, "unknown syscall \"" + f.syscalls(i) + "\" on this architecture"});
    } else if (NeverIntercepted(f.syscalls(i))) {
      e.push_back({field, "\"" + f.syscalls(i) + "\" cannot be intercepted"});
    }
  }
  if (!f.error().empty() && !ParseErrno(f.error())) {
    e.push_back({"syscall.error",
                 "unknown errno \"" + f.error() + "\" (use a name like EIO or a number 1..4095)"});
  }
  auto delay = FromProto(f.delay());
  if (delay.count() < 0) e.push_back({"syscall.delay", "must not be negative"});
  if (delay > std::chrono::hours(1)) e.push_back({"syscall.delay", "at most 1h"});
  if (f.error().empty() && delay.count() <= 0) {
    e.push_back({"syscall.error", "set an error, a delay, or both"});
  }
  if (!(f.percent() >= 0 && f.percent() <= 100)) {
    e.push_back({"syscall.percent", "must be in (0, 100] (0 means 100)"});
  }
  return e;
}

}  // namespace faultline::faults::syscalls
