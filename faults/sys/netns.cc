#include "faults/sys/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <thread>

#include "faults/sys/error.h"
#include "faults/sys/unique_fd.h"

namespace faultline::sys {
namespace {

constexpr const char* kNetnsDir = "/run/netns";

// /run/netns must be a shared mount point: a namespace bound under it then propagates into
// mount namespaces created later (systemd services, containers), as with iproute2.
void PrepareNetnsDir() {
  if (::mkdir("/run", 0755) != 0 && errno != EEXIST) ThrowErrno("mkdir /run");
  if (::mkdir(kNetnsDir, 0755) != 0 && errno != EEXIST) ThrowErrno("mkdir /run/netns");
  if (::mount("", kNetnsDir, "none", MS_SHARED | MS_REC, nullptr) == 0) return;
  if (errno != EINVAL) ThrowErrno("make /run/netns shared");
  // Not a mount point yet: bind it onto itself, then share it.
  if (::mount(kNetnsDir, kNetnsDir, "none", MS_BIND | MS_REC, nullptr) != 0) {
    ThrowErrno("bind /run/netns");
  }
  if (::mount("", kNetnsDir, "none", MS_SHARED | MS_REC, nullptr) != 0) {
    ThrowErrno("make /run/netns shared");
  }
}

}  // namespace

bool NetNs::Exists(const std::string& name) {
  struct stat st;
  return ::stat(PathOf(name).c_str(), &st) == 0;
}

unsigned long NetNs::Inode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

NetNs NetNs::Create(const std::string& name) {
  PrepareNetnsDir();
  std::string path = PathOf(name);
  sys::UniqueFd f(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
  if (!f) {
    if (errno == EEXIST) throw Error("network namespace " + name + " already exists");
    ThrowErrno("create " + path);
  }
  f.reset();
  NetNs guard(name);  // from here on, failure removes the file (and mount)
  int err = 0;
  const char* stage = "";
  // unshare() moves only the calling thread, so a throwaway thread makes the namespace and
  // pins it with the bind mount before it exits.
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      err = errno;
      stage = "unshare(CLONE_NEWNET)";
      return;
    }
    if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
      err = errno;
      stage = "bind-mount the namespace";
    }
  }).join();
  if (err != 0) ThrowErrno("netns " + name + ": " + stage, err);
  return guard;
}

void NetNs::Remove(const std::string& name) {
  std::string path = PathOf(name);
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    ThrowErrno("umount " + path);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) ThrowErrno("unlink " + path);
}

NetNs::~NetNs() {
  if (name_.empty()) return;
  try {
    Remove(name_);
  } catch (const std::exception&) {
    // A destructor cannot report; `lab down` sweeps what is left by name.
  }
}

void NetNs::RunIn(const std::string& path, const std::function<void()>& fn) {
  std::exception_ptr failure;
  std::thread([&] {
    try {
      sys::UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!ns) ThrowErrno("open " + path);
      if (::setns(ns.get(), CLONE_NEWNET) != 0) ThrowErrno("setns " + path);
      fn();
    } catch (...) {
      failure = std::current_exception();
    }
  }).join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace faultline::sys
