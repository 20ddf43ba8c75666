#include <errno.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faults/core/duration.h"
#include "faults/core/registry.h"
#include "faults/syscall/interceptor.h"
#include "faults/syscall/launch.h"
#include "faults/syscall/syscall_faults.h"

namespace faultline::faults::syscalls {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;

auto ErrorOn(const std::string& field, const std::string& reason) {
  return Contains(
      AllOf(Field(&FieldError::field, field), Field(&FieldError::reason, HasSubstr(reason))));
}

v1::FaultSpec Spec(std::vector<std::string> calls, std::string error) {
  v1::FaultSpec s;
  auto* f = s.mutable_syscall();
  f->set_managed("etcd");
  for (auto& c : calls) f->add_syscalls(c);
  f->set_error(error);
  return s;
}

class SyscallValidation : public ::testing::Test {
 protected:
  void SetUp() override { RegisterSyscallFaults(registry_); }
  Registry registry_;
};

TEST_F(SyscallValidation, GoodSpecPasses) {
  EXPECT_TRUE(registry_.Validate(Spec({"fdatasync", "fsync"}, "EIO")).empty());
  auto d = Spec({"pwrite64"}, "");
  ToProto(std::chrono::milliseconds(50), d.mutable_syscall()->mutable_delay());
  EXPECT_TRUE(registry_.Validate(d).empty());
}

TEST_F(SyscallValidation, UnknownSyscallNamesItsIndex) {
  auto errors = registry_.Validate(Spec({"fdatasync", "fsnyc"}, "EIO"));
  EXPECT_THAT(errors, ErrorOn("syscall.syscalls[1]", "unknown syscall \"fsnyc\""));
  EXPECT_EQ(errors.size(), 1u);
}

TEST_F(SyscallValidation, EveryProblemAtOnce) {
  v1::FaultSpec s = Spec({"execve"}, "EWHAT");
  s.mutable_syscall()->set_managed("");
  s.mutable_syscall()->set_percent(150);
  auto errors = registry_.Validate(s);
  EXPECT_THAT(errors, ErrorOn("syscall.managed", "required"));
  EXPECT_THAT(errors, ErrorOn("syscall.syscalls[0]", "cannot be intercepted"));
  EXPECT_THAT(errors, ErrorOn("syscall.error", "unknown errno \"EWHAT\""));
  EXPECT_THAT(errors, ErrorOn("syscall.percent", "(0, 100]"));
  EXPECT_THAT(registry_.Validate(Spec({}, "")), ErrorOn("syscall.syscalls", "at least one"));
  EXPECT_THAT(registry_.Validate(Spec({"fsync"}, "")), ErrorOn("syscall.error", "or both"));
}

TEST_F(SyscallValidation, NoSupervisorIsAClearFaultError) {
  FaultContext ctx;
  auto f = registry_.Create(Spec({"fsync"}, "EIO"), ctx);
  try {
    f->Prepare();
    FAIL();
  } catch (const FaultError& e) {
    EXPECT_THAT(e.what(), HasSubstr("syscall.managed"));
  }
}

TEST(Errno, NamesAndNumbers) {
  EXPECT_EQ(ParseErrno("EIO"), EIO);
  EXPECT_EQ(ParseErrno("ENOSPC"), ENOSPC);
  EXPECT_EQ(ParseErrno("5"), 5);
  EXPECT_FALSE(ParseErrno("0"));
  EXPECT_FALSE(ParseErrno("EIOO"));
  EXPECT_FALSE(ParseErrno(""));
}

TEST(Syscalls, ResolveOnThisArch) {
  EXPECT_TRUE(ResolveSyscall("fdatasync"));
  EXPECT_TRUE(ResolveSyscall("renameat2"));
  EXPECT_FALSE(ResolveSyscall("nosuchcall"));
  EXPECT_FALSE(ResolveSyscall(""));
}

TEST(Launch, WrapArgvKeepsTheCommandIntact) {
  NotifyChannel ch;
  auto argv = ch.WrapArgv({"/usr/bin/etcd", "--name", "a b"}, {"fsync", "fdatasync"}, "/x/loader");
  EXPECT_THAT(argv, ElementsAre("/x/loader", "--fd", std::to_string(ch.child_fd()), "--syscalls",
                                "fsync,fdatasync", "--", "/usr/bin/etcd", "--name", "a b"));
}

}  // namespace
}  // namespace faultline::faults::syscalls
