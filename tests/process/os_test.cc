// Tests for process/os.h with real children: fork, pidfd, the wait that reaps them, how an exit is
// described, and the /proc start time that tells a process from a later one with the same pid.
#include "process/os.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "process/unique_fd.h"

namespace sprocket {
namespace {

using ::testing::HasSubstr;

// A pid above pid_max, which no process can have.
pid_t NonExistentPid() {
  int pid_max = 4194304;  // PID_MAX_LIMIT on 64-bit
  std::ifstream("/proc/sys/kernel/pid_max") >> pid_max;
  return static_cast<pid_t>(pid_max + 1);
}

// Waits until the pidfd is readable (the process exited); false on timeout.
bool WaitReadable(int pidfd) {
  pollfd p{.fd = pidfd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, 10000) == 1 && (p.revents & POLLIN) != 0;
}

// Forks a child that runs `body` and then _exits with 0; returns its pid in the parent.
template <typename F>
pid_t ForkChild(F body) {
  absl::StatusOr<pid_t> pid = RealOs().Fork();
  if (!pid.ok()) {
    ADD_FAILURE() << pid.status();
    return -1;
  }
  if (*pid == 0) {
    body();
    ::_exit(0);
  }
  return *pid;
}

// Opens a pidfd for `pid`, waits for its exit and reaps it.
absl::StatusOr<ExitStatus> ReapWithPidfd(pid_t pid) {
  absl::StatusOr<UniqueFd> pidfd = RealOs().PidfdOpen(pid);
  if (!pidfd.ok()) {
    return pidfd.status();
  }
  if (!WaitReadable(pidfd->get())) {
    return absl::DeadlineExceededError("child did not exit");
  }
  return RealOs().WaitPidfd(pidfd->get());
}

TEST(RealOsTest, ForkPidfdAndWaitReportAnExitCode) {
  const pid_t child = ForkChild([] { ::_exit(7); });
  ASSERT_GT(child, 0);
  absl::StatusOr<ExitStatus> status = ReapWithPidfd(child);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_FALSE(status->signaled);
  EXPECT_EQ(status->code, 7);
  EXPECT_EQ(DescribeExit(*status), "exit 7");
  // Reaped: the pid is no longer our child.
  EXPECT_EQ(::waitpid(child, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST(RealOsTest, ForkPidfdAndWaitReportAKillingSignal) {
  const pid_t child = ForkChild([] {
    for (;;) {
      ::pause();
    }
  });
  ASSERT_GT(child, 0);
  // The pidfd is opened while the child lives, as the manager does right after fork.
  absl::StatusOr<UniqueFd> pidfd = RealOs().PidfdOpen(child);
  ASSERT_TRUE(pidfd.ok()) << pidfd.status();
  ASSERT_TRUE(RealOs().Kill(child, SIGKILL).ok());
  ASSERT_TRUE(WaitReadable(pidfd->get()));
  absl::StatusOr<ExitStatus> status = RealOs().WaitPidfd(pidfd->get());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->signaled);
  EXPECT_EQ(status->code, SIGKILL);
  EXPECT_EQ(status->code, 9);
  EXPECT_EQ(DescribeExit(*status), "signal 9 (SIGKILL)");
}

TEST(RealOsTest, CleanExitIsExitZero) {
  const pid_t child = ForkChild([] {});
  ASSERT_GT(child, 0);
  absl::StatusOr<ExitStatus> status = ReapWithPidfd(child);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_FALSE(status->signaled);
  EXPECT_EQ(status->code, 0);
}

TEST(RealOsTest, WaitPidfdOnABadFdIsAnError) {
  absl::StatusOr<ExitStatus> status = RealOs().WaitPidfd(-1);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.status().message()), HasSubstr("waitid"));
}

TEST(RealOsTest, PidfdOpenAndKillOfANonExistentPidAreErrors) {
  absl::StatusOr<UniqueFd> pidfd = RealOs().PidfdOpen(NonExistentPid());
  ASSERT_FALSE(pidfd.ok());
  EXPECT_THAT(std::string(pidfd.status().message()), HasSubstr("pidfd_open"));

  const absl::Status kill = RealOs().Kill(NonExistentPid(), 0);
  ASSERT_FALSE(kill.ok());
  EXPECT_EQ(kill.code(), absl::StatusCode::kNotFound);  // ESRCH
  EXPECT_THAT(std::string(kill.message()), HasSubstr("kill("));
}

TEST(RealOsTest, RealOsIsASingleton) { EXPECT_EQ(&RealOs(), &RealOs()); }

TEST(DescribeExitTest, Texts) {
  EXPECT_EQ(DescribeExit({.signaled = false, .code = 7}), "exit 7");
  EXPECT_EQ(DescribeExit({.signaled = false, .code = 0}), "exit 0");
  EXPECT_EQ(DescribeExit({.signaled = false, .code = 255}), "exit 255");
  EXPECT_EQ(DescribeExit({.signaled = true, .code = 9}), "signal 9 (SIGKILL)");
  EXPECT_EQ(DescribeExit({.signaled = true, .code = SIGTERM}), "signal 15 (SIGTERM)");
  EXPECT_EQ(DescribeExit({.signaled = true, .code = SIGSEGV}), "signal 11 (SIGSEGV)");
  // No name for it: still one readable line.
  EXPECT_EQ(DescribeExit({.signaled = true, .code = 200}), "signal 200 (SIG?)");
}

TEST(ReadProcessStartTimeTest, OurOwnIsPositiveAndStable) {
  absl::StatusOr<std::uint64_t> first = ReadProcessStartTime(::getpid());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GT(*first, 0u);
  absl::StatusOr<std::uint64_t> second = ReadProcessStartTime(::getpid());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, *first);
  absl::StatusOr<std::uint64_t> via_os = RealOs().StartTime(::getpid());
  ASSERT_TRUE(via_os.ok()) << via_os.status();
  EXPECT_EQ(*via_os, *first);
}

TEST(ReadProcessStartTimeTest, AChildForkedLaterStartedLater) {
  absl::StatusOr<std::uint64_t> ours = ReadProcessStartTime(::getpid());
  ASSERT_TRUE(ours.ok()) << ours.status();
  // Three clock ticks from now the tick count is past ours for sure.
  const long hz = ::sysconf(_SC_CLK_TCK);
  ASSERT_GT(hz, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(3 * 1000 / hz + 1));

  int gate[2];
  ASSERT_EQ(::pipe(gate), 0);
  UniqueFd gate_read(gate[0]);
  UniqueFd gate_write(gate[1]);
  const pid_t child = ForkChild([&] {
    gate_write.Reset();
    char c;
    (void)::read(gate_read.get(), &c, 1);  // until the parent closes its end
  });
  ASSERT_GT(child, 0);
  absl::StatusOr<std::uint64_t> theirs = ReadProcessStartTime(child);
  gate_write.Reset();
  absl::StatusOr<ExitStatus> status = ReapWithPidfd(child);
  ASSERT_TRUE(status.ok()) << status.status();

  ASSERT_TRUE(theirs.ok()) << theirs.status();
  EXPECT_GT(*theirs, *ours);
}

TEST(ReadProcessStartTimeTest, ParsesPastACommWithSpacesAndParentheses) {
  int to_child[2];
  int to_parent[2];
  ASSERT_EQ(::pipe(to_child), 0);
  ASSERT_EQ(::pipe(to_parent), 0);
  UniqueFd child_in(to_child[0]), parent_out(to_child[1]);
  UniqueFd parent_in(to_parent[0]), child_out(to_parent[1]);

  const pid_t child = ForkChild([&] {
    char c;
    (void)::read(child_in.get(), &c, 1);
    ::prctl(PR_SET_NAME, "a) b (c) 1 2 3");
    (void)::write(child_out.get(), "r", 1);
    (void)::read(child_in.get(), &c, 1);
  });
  ASSERT_GT(child, 0);
  absl::StatusOr<std::uint64_t> before = ReadProcessStartTime(child);
  ASSERT_EQ(::write(parent_out.get(), "g", 1), 1);
  char c;
  ASSERT_EQ(::read(parent_in.get(), &c, 1), 1);
  std::string comm;
  std::getline(std::ifstream("/proc/" + std::to_string(child) + "/comm"), comm);
  absl::StatusOr<std::uint64_t> after = ReadProcessStartTime(child);
  ASSERT_EQ(::write(parent_out.get(), "q", 1), 1);
  ASSERT_TRUE(ReapWithPidfd(child).ok());

  ASSERT_EQ(comm, "a) b (c) 1 2 3");
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, *before);
}

TEST(ReadProcessStartTimeTest, NonExistentPidIsAnError) {
  absl::StatusOr<std::uint64_t> t = ReadProcessStartTime(NonExistentPid());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("/proc/"));
}

TEST(ReadProcessStartTimeTest, ReapedChildIsAnError) {
  const pid_t child = ForkChild([] {});
  ASSERT_GT(child, 0);
  ASSERT_TRUE(ReapWithPidfd(child).ok());
  // The pid could in principle be reused at once; only assert when it was not.
  if (::kill(child, 0) < 0 && errno == ESRCH) {
    EXPECT_FALSE(ReadProcessStartTime(child).ok());
  }
}

}  // namespace
}  // namespace sprocket
