#include "faults/sys/mountinfo.h"

#include <gtest/gtest.h>

namespace faultline::sys {
namespace {

TEST(MountInfo, ParsesFieldsOptionalTagsAndEscapes) {
  const char* text =
      "22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n"
      "98 29 0:52 / /var/lib/my\\040lab/e1 rw,nosuid,nodev,relatime shared:57 master:1 - "
      "fuse.faultline faultline rw,user_id=0,group_id=0,allow_other\n"
      "garbage without a separator\n"
      "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
  auto m = ParseMountInfo(text);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].mount_point, "/proc");
  EXPECT_EQ(m[0].fstype, "proc");
  EXPECT_EQ(m[1].id, 98);
  EXPECT_EQ(m[1].parent, 29);
  EXPECT_EQ(m[1].major, 0u);
  EXPECT_EQ(m[1].minor, 52u);
  EXPECT_EQ(m[1].mount_point, "/var/lib/my lab/e1");
  EXPECT_EQ(m[1].fstype, "fuse.faultline");
  EXPECT_EQ(m[1].source, "faultline");
  EXPECT_EQ(m[2].fstype, "cgroup2");
  EXPECT_EQ(m[2].mount_point, "/sys/fs/cgroup");
}

TEST(MountInfo, UnescapesOnlyOctalTriples) {
  EXPECT_EQ(UnescapeMountField("a\\040b\\011c\\134d"), "a b\tc\\d");
  // A trailing escape and a backslash not followed by three octal digits stay as written.
  EXPECT_EQ(UnescapeMountField("end\\040"), "end ");
  EXPECT_EQ(UnescapeMountField("x\\09y\\"), "x\\09y\\");
}

TEST(MountInfo, ReadsThisProcessesMounts) {
  bool root = false;
  for (const auto& m : ReadMountInfo()) root |= m.mount_point == "/";
  EXPECT_TRUE(root);
}

}  // namespace
}  // namespace faultline::sys
