// What process/rejoin empties, read from the argv etcd runs with: the flag forms Go's parser
// takes, the refusals that keep it from emptying a guessed or root path, and emptying a directory
// that must itself stay (a mount point).
#include "faults/process/member_dirs.h"

#include <gtest/gtest.h>

#include <fstream>

#include "faults/core/errors.h"
#include "tests/support/subprocess.h"

namespace faultline::faults::process {
namespace {

using Argv = std::vector<std::string>;
using Paths = std::vector<std::filesystem::path>;

TEST(EtcdStateDirs, ReadsEveryFlagFormAndTheLastOneWins) {
  EXPECT_EQ(EtcdStateDirs({"etcd", "--data-dir", "/var/lib/etcd"}), Paths{"/var/lib/etcd"});
  EXPECT_EQ(EtcdStateDirs({"etcd", "-data-dir=/d1", "--name", "e1", "--data-dir=/d2"}),
            Paths{"/d2"});
  EXPECT_EQ(EtcdStateDirs({"etcd", "--data-dir", "/d", "--wal-dir", "/wal"}),
            (Paths{"/d", "/wal"}));
  // A WAL dir inside the data dir goes with it.
  EXPECT_EQ(EtcdStateDirs({"etcd", "--data-dir=/d", "--wal-dir=/d/member/wal"}), Paths{"/d"});
  // After "--" nothing is a flag.
  EXPECT_EQ(EtcdStateDirs({"etcd", "--data-dir=/d", "--", "--data-dir=/other"}), Paths{"/d"});
}

TEST(EtcdStateDirs, RefusesToGuess) {
  auto message = [](const Argv& argv) {
    try {
      EtcdStateDirs(argv);
    } catch (const FaultError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({"etcd", "--name", "e1"}).find("no --data-dir"), std::string::npos);
  EXPECT_NE(message({"etcd", "--data-dir", "e1.etcd"}).find("not absolute"), std::string::npos);
  EXPECT_NE(message({"etcd", "--data-dir=/"}).find("refusing"), std::string::npos);
  EXPECT_NE(message({"etcd", "--data-dir=/d", "--wal-dir=/./"}).find("refusing"),
            std::string::npos);
}

TEST(EmptyDirectory, RemovesEverythingInsideAndKeepsTheDirectory) {
  faultline::testing::TempDir dir("faultline-member-dirs");
  const auto d = dir.path() / "data";
  std::filesystem::create_directories(d / "member" / "snap");
  std::ofstream(d / "member" / "snap" / "db") << "x";
  std::ofstream(d / "marker") << "y";
  std::filesystem::create_symlink("/etc", d / "link");
  EXPECT_EQ(EmptyDirectory(d), 3);
  EXPECT_TRUE(std::filesystem::is_directory(d));
  EXPECT_TRUE(std::filesystem::is_empty(d));
  // The link went, not what it pointed at.
  EXPECT_TRUE(std::filesystem::exists("/etc/hostname") || std::filesystem::exists("/etc"));
  EXPECT_EQ(EmptyDirectory(dir.path() / "missing"), 0);
}

}  // namespace
}  // namespace faultline::faults::process
