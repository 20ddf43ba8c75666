#include "faults/io/glob.h"

#include <gtest/gtest.h>

namespace faultline::faults::io {
namespace {

TEST(GlobTest, EmptyAndDoubleStarMatchEverything) {
  EXPECT_TRUE(GlobMatch("", "a/b/c"));
  EXPECT_TRUE(GlobMatch("**", "a/b/c"));
  EXPECT_TRUE(GlobMatch("**", ""));
}

TEST(GlobTest, PatternWithoutSlashMatchesBaseName) {
  EXPECT_TRUE(GlobMatch("*.wal", "member/wal/0000000000000000-0000000000000000.wal"));
  EXPECT_TRUE(GlobMatch("*.wal", "x.wal"));
  EXPECT_FALSE(GlobMatch("*.wal", "member/wal/x.wal.tmp"));
  EXPECT_FALSE(GlobMatch("*.wal", "member/wal"));
}

TEST(GlobTest, StarStaysInsideOneSegment) {
  EXPECT_TRUE(GlobMatch("member/*/db", "member/snap/db"));
  EXPECT_FALSE(GlobMatch("member/*/db", "member/a/b/db"));
  EXPECT_FALSE(GlobMatch("member/*", "member/a/b"));
  EXPECT_TRUE(GlobMatch("m?mber/*", "member/a"));
  EXPECT_FALSE(GlobMatch("m?mber/*", "mmber/a"));
}

TEST(GlobTest, DoubleStarSpansSegmentsIncludingNone) {
  EXPECT_TRUE(GlobMatch("member/**/*.wal", "member/wal/1.wal"));
  EXPECT_TRUE(GlobMatch("member/**/*.wal", "member/1.wal"));
  EXPECT_TRUE(GlobMatch("member/**/*.wal", "member/a/b/c/1.wal"));
  EXPECT_FALSE(GlobMatch("member/**/*.wal", "other/wal/1.wal"));
  EXPECT_TRUE(GlobMatch("**/snap/**", "member/snap/db"));
  EXPECT_TRUE(GlobMatch("member/**", "member/snap/db"));
  EXPECT_TRUE(GlobMatch("/member/**", "member/x"));
}

TEST(GlobTest, CharacterClasses) {
  EXPECT_TRUE(GlobMatch("[0-9]*.wal", "3abc.wal"));
  EXPECT_FALSE(GlobMatch("[0-9]*.wal", "abc.wal"));
  EXPECT_TRUE(GlobMatch("[!0-9]*.wal", "abc.wal"));
  EXPECT_TRUE(GlobMatch("a[bc]d", "acd"));
  EXPECT_FALSE(GlobMatch("a[bc]d", "aed"));
}

TEST(GlobTest, StarBacktracks) {
  EXPECT_TRUE(GlobMatch("*a*b*c", "xxaxxbxxbxc"));
  EXPECT_FALSE(GlobMatch("*a*b*c", "xxaxxbxxbx"));
}

TEST(GlobTest, Errors) {
  EXPECT_EQ(GlobError("member/**/*.wal"), "");
  EXPECT_NE(GlobError("a[bc"), "");
  EXPECT_NE(GlobError("a//b"), "");
  EXPECT_NE(GlobError("a/x**/b"), "");
  EXPECT_NE(GlobError("a/../b"), "");
}

}  // namespace
}  // namespace faultline::faults::io
