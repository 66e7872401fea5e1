// Tests for process/process_title.h. InitProcessTitle needs the argv area the kernel laid out, so
// this test has its own main() that keeps the real argv; each test forks a child that retitles
// itself, and the parent checks what /proc shows for the child.
#include "process/process_title.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sprocket {
namespace {

// The process's real argv, saved before InitGoogleTest removes its flags from the array.
int g_argc = 0;
std::vector<char*> g_argv;

std::string ReadProcFile(pid_t pid, const char* name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The bytes of the kernel-given argv area: every argv string, back to back.
std::size_t ArgvAreaSize() {
  std::size_t n = 0;
  for (int i = 0; i < g_argc; ++i) {
    n += std::strlen(g_argv[i]) + 1;
  }
  return n;
}

// What a child saw of itself after retitling; "" when all was as expected.
std::string CheckChild(const std::vector<std::string>& args, const std::string& saved_argv0,
                       const std::string& saved_tmpdir) {
  std::string errors;
  if (args.size() != static_cast<std::size_t>(g_argc) || args[0] != saved_argv0) {
    errors += "InitProcessTitle did not return the original argv; ";
  }
  const char* tmpdir = ::getenv("TEST_TMPDIR");
  if (tmpdir == nullptr || saved_tmpdir != tmpdir) {
    errors += "TEST_TMPDIR lost; ";
  }
  const char* mine = ::getenv("SPROCKET_TITLE_TEST");
  if (mine == nullptr || std::string(mine) != "still here") {
    errors += "SPROCKET_TITLE_TEST lost; ";
  }
  // The environment stays writable after the move to the heap.
  if (::setenv("SPROCKET_TITLE_TEST_2", "set later", 1) != 0 ||
      std::string(::getenv("SPROCKET_TITLE_TEST_2")) != "set later") {
    errors += "setenv after InitProcessTitle failed; ";
  }
  for (int i = 1; i < g_argc; ++i) {
    if (g_argv[i][0] != '\0') {
      errors += "argv[" + std::to_string(i) + "] still points into the title; ";
    }
  }
  return errors;
}

struct ChildView {
  std::string report;   // CheckChild's result, from the child
  std::string cmdline;  // /proc/CHILD/cmdline, read while the child was alive
  std::string comm;     // /proc/CHILD/comm
  int wstatus = 0;
};

// Forks a child that calls InitProcessTitle on the real argv and SetProcessTitle(title), reports
// what it saw, and waits until the parent has read its /proc files.
ChildView RunRetitledChild(const std::string& title) {
  ::setenv("SPROCKET_TITLE_TEST", "still here", 1);
  const char* tmpdir = ::getenv("TEST_TMPDIR");
  const std::string saved_tmpdir = tmpdir != nullptr ? tmpdir : "";
  const std::string saved_argv0 = g_argv[0];

  int report[2];
  int gate[2];
  if (::pipe(report) != 0 || ::pipe(gate) != 0) {
    ADD_FAILURE() << "pipe";
    return {};
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(report[0]);
    ::close(gate[1]);
    std::vector<std::string> args = InitProcessTitle(g_argc, g_argv.data());
    SetProcessTitle(title);
    const std::string errors = CheckChild(args, saved_argv0, saved_tmpdir);
    const std::string msg = errors.empty() ? "ok" : errors;
    (void)::write(report[1], msg.data(), msg.size());
    ::close(report[1]);
    char c;
    (void)::read(gate[0], &c, 1);  // EOF once the parent is done looking
    ::_exit(0);
  }
  ::close(report[1]);
  ::close(gate[0]);
  ChildView view;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(report[0], buf, sizeof(buf))) > 0) {
    view.report.append(buf, static_cast<std::size_t>(n));
  }
  ::close(report[0]);
  view.cmdline = ReadProcFile(pid, "cmdline");
  view.comm = ReadProcFile(pid, "comm");
  ::close(gate[1]);
  ::waitpid(pid, &view.wstatus, 0);
  return view;
}

// The title as `ps` reads it: cmdline up to its first NUL.
std::string FirstArg(const std::string& cmdline) { return cmdline.substr(0, cmdline.find('\0')); }

TEST(ProcessTitleTest, ChildShowsTheTitleInCmdlineAndComm) {
  const std::string title = "sprocket: test title";
  ASSERT_GT(ArgvAreaSize(), title.size()) << "the test binary's path is shorter than the title";
  const ChildView view = RunRetitledChild(title);
  EXPECT_EQ(view.report, "ok");
  EXPECT_EQ(view.cmdline.rfind(title, 0), 0u) << view.cmdline;
  EXPECT_EQ(FirstArg(view.cmdline), title);
  // The old argv text is gone, not just covered at the front.
  EXPECT_EQ(view.cmdline.find(g_argv[0]), std::string::npos);
  EXPECT_EQ(view.comm, title.substr(0, 15) + "\n");
  EXPECT_EQ(view.comm, "sprocket: test \n");
  ASSERT_TRUE(WIFEXITED(view.wstatus));
  EXPECT_EQ(WEXITSTATUS(view.wstatus), 0);
}

TEST(ProcessTitleTest, TitleLongerThanArgvUsesTheEnvironmentAreaAndKeepsTheEnvironment) {
  // Longer than argv alone, short enough for argv plus the test's environment strings.
  const std::string title = "sprocket: process " + std::string(ArgvAreaSize() + 40, 'x');
  const ChildView view = RunRetitledChild(title);
  EXPECT_EQ(view.report, "ok");
  EXPECT_EQ(FirstArg(view.cmdline), title);
  EXPECT_EQ(view.comm, "sprocket: proce\n");
  ASSERT_TRUE(WIFEXITED(view.wstatus));
  EXPECT_EQ(WEXITSTATUS(view.wstatus), 0);
}

TEST(ProcessTitleTest, TitleLongerThanTheWholeAreaIsTruncated) {
  const std::string title = "sprocket: " + std::string(1 << 20, 'y');
  const ChildView view = RunRetitledChild(title);
  EXPECT_EQ(view.report, "ok");
  const std::string shown = FirstArg(view.cmdline);
  EXPECT_GT(shown.size(), ArgvAreaSize());
  EXPECT_LT(shown.size(), title.size());
  EXPECT_EQ(title.rfind(shown, 0), 0u) << "shown title is not a prefix of the title";
}

TEST(ProcessTitleTest, SetProcessTitleWithoutInitOnlySetsComm) {
  // In a child, so the test process keeps its own name.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    SetProcessTitle("sprocket: comm only");
    std::ifstream in("/proc/self/comm");
    std::string comm;
    std::getline(in, comm);
    const std::string cmdline = ReadProcFile(::getpid(), "cmdline");
    const bool argv_untouched = cmdline.rfind(g_argv[0], 0) == 0;
    ::_exit(comm == "sprocket: comm " && argv_untouched ? 0 : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
}

}  // namespace
}  // namespace sprocket

int main(int argc, char** argv) {
  sprocket::g_argc = argc;
  sprocket::g_argv.assign(argv, argv + argc + 1);  // with the terminating nullptr
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
