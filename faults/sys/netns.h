#pragma once

#include <functional>
#include <string>

namespace faultline::sys {

// Named network namespaces, made the way `ip netns add` makes them so that `ip netns exec`
// and every other tool sees them: a bind mount of a namespace file onto /run/netns/NAME,
// with /run/netns itself a shared mount so the namespace shows in every mount namespace.
class NetNs {
 public:
  static std::string PathOf(const std::string& name) { return "/run/netns/" + name; }
  static bool Exists(const std::string& name);
  // Creates the namespace; throws if NAME exists already. The returned guard removes it again
  // unless Release() is called (so a failed bring-up leaves nothing behind).
  static NetNs Create(const std::string& name);
  // umount2 + unlink; a namespace that does not exist is fine.
  static void Remove(const std::string& name);
  // Runs `fn` on a fresh thread that has entered the namespace at `path`: sockets it creates
  // stay in that namespace; the caller's threads are untouched. Exceptions are rethrown here.
  static void RunIn(const std::string& path, const std::function<void()>& fn);
  // Inode of the namespace file (what /proc/PID/ns/net points at); 0 if it does not exist.
  static unsigned long Inode(const std::string& path);

  NetNs(NetNs&& o) noexcept : name_(std::move(o.name_)) { o.name_.clear(); }
  NetNs& operator=(NetNs&&) = delete;
  NetNs(const NetNs&) = delete;
  ~NetNs();
  const std::string& name() const { return name_; }
  std::string path() const { return PathOf(name_); }
  void Release() { name_.clear(); }

 private:
  explicit NetNs(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

}  // namespace faultline::sys
