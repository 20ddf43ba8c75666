// Host side of the kernel lane: boots Debian's cloud kernel under qemu (TCG) with an initramfs
// holding net_kernel_guest (see guest_test.cc), which runs the netem paths through the same
// netlink code, and reads its verdict from the serial console.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>

namespace {

namespace fs = std::filesystem;

std::string Shell(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  *rc = pclose(p);
  return out;
}

// The newest installed cloud kernel whose modules are present.
std::string CloudKernel() {
  std::string best;
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/boot", ec)) {
    std::string name = e.path().filename();
    if (!name.starts_with("vmlinuz-") || !name.ends_with("-cloud-amd64")) continue;
    std::string ver = name.substr(8);
    if (fs::exists("/lib/modules/" + ver + "/modules.dep") && ver > best) best = ver;
  }
  return best;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("fl-net-kernel-" + std::to_string(getpid()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

TEST(NetKernelLane, NetemPathsInCloudKernel) {
  const std::string kver = CloudKernel();
  if (kver.empty()) GTEST_SKIP() << "no /boot/vmlinuz-*-cloud-amd64 with modules";
  if (access("/usr/bin/qemu-system-x86_64", X_OK) != 0) GTEST_SKIP() << "no qemu-system-x86_64";
  if (access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "no busybox";
  TempDir tmp;
  const std::string initrd = (tmp.path / "initrd.gz").string();
  int rc = 0;
  std::string out = Shell(std::string("sh ") + NET_KERNEL_MKINITRAMFS + " " + kver + " " +
                              NET_KERNEL_GUEST + " " + initrd + " " + tmp.path.string(),
                          &rc);
  ASSERT_EQ(rc, 0) << out;
  // TCG (KVM is not usable here). panic=-1 + -no-reboot end qemu on a guest crash; the outer
  // timeout ends it if the guest hangs.
  const std::string cmd =
      "timeout 200 qemu-system-x86_64 -machine accel=tcg -cpu max -m 768 "
      "-smp 1 -kernel /boot/vmlinuz-" +
      kver + " -initrd " + initrd +
      " -append 'console=ttyS0 panic=-1 quiet random.trust_cpu=on' "
      "-display none -monitor none -serial stdio -no-reboot -nodefaults";
  out = Shell(cmd, &rc);
  std::printf("%s\n", out.c_str());
  ASSERT_NE(out.find("FLNET-BOOTED"), std::string::npos) << "the VM did not reach /init";
  EXPECT_EQ(out.find("FLNET-MODULE-FAILED"), std::string::npos);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("FLNET-RESULT rc=(\\d+)")))
      << "the guest did not finish (timeout or crash)";
  EXPECT_EQ(m[1], "0") << "guest tests failed; see the console log above";
  // Every guest test must have run, not been skipped.
  EXPECT_EQ(out.find("[  SKIPPED ]"), std::string::npos);
}

}  // namespace
