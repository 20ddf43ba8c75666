// What a supervised process wrote before it died, read back from its log: the fatal lines of
// this process only (from its start offset), and a tail that starts at a line.
#include "faults/process/output_excerpt.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace faultline::faults::process {
namespace {

TEST(OutputExcerpt, RecognizesGoZapAndCapnslogFatalLines) {
  EXPECT_TRUE(IsFatalLine("panic: runtime error: index out of range [3] with length 3"));
  EXPECT_TRUE(IsFatalLine("fatal error: concurrent map writes"));
  EXPECT_TRUE(IsFatalLine("SIGSEGV: segmentation violation"));
  EXPECT_TRUE(IsFatalLine("SIGQUIT: quit"));
  EXPECT_TRUE(IsFatalLine(R"({"level":"panic","ts":"2026-12-02T20:00:00Z","msg":"x"})"));
  EXPECT_TRUE(IsFatalLine(R"({"level":"fatal","msg":"discovery failed"})"));
  EXPECT_TRUE(IsFatalLine("2026-12-02T20:00:00.000Z\tPANIC\traft/raft.go:1\ttocommit(31) is out"));
  EXPECT_TRUE(IsFatalLine("2026-12-02 20:00:00.000000 C | etcdmain: cannot access data dir"));
  EXPECT_FALSE(IsFatalLine(R"({"level":"info","msg":"panic: not really, a key named so"})"));
  EXPECT_FALSE(IsFatalLine("goroutine 1 [running]:"));
  EXPECT_FALSE(IsFatalLine("SIGNAL handling set up"));
  EXPECT_FALSE(IsFatalLine(""));
}

TEST(OutputExcerpt, ReadsOnlyThisProcesssOutput) {
  auto path = std::filesystem::temp_directory_path() /
              ("faultline-excerpt-" + std::to_string(::getpid()) + ".log");
  {
    std::ofstream out(path);
    out << "panic: an earlier process's panic\n";
  }
  off_t from = static_cast<off_t>(std::filesystem::file_size(path));
  {
    std::ofstream out(path, std::ios::app);
    out << R"({"level":"info","msg":"serving"})"
        << "\n";
    out << R"({"level":"panic","msg":"failed to apply","error":"boom"})"
        << "\n";
    out << "panic: failed to apply\n\ngoroutine 1 [running]:\n";
    for (int i = 0; i < 400; ++i) out << "main.f" << i << "()\n\t/src/x.go:" << i << "\n";
  }
  OutputExcerpt e = ReadOutputExcerpt(path.string(), from, 256);
  ASSERT_EQ(e.fatal_lines.size(), 2u);
  EXPECT_EQ(e.fatal_lines[0], R"({"level":"panic","msg":"failed to apply","error":"boom"})");
  EXPECT_EQ(e.fatal_lines[1], "panic: failed to apply");
  EXPECT_LE(e.tail.size(), 256u);
  EXPECT_EQ(e.tail.back(), '\n');
  EXPECT_TRUE(e.tail.rfind("main.f", 0) == 0 || e.tail.rfind("\t/src", 0) == 0) << e.tail;
  EXPECT_TRUE(e.scanned_all);
  // No log: nothing, and no error.
  EXPECT_TRUE(ReadOutputExcerpt("/nonexistent/log", 0).fatal_lines.empty());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace faultline::faults::process
