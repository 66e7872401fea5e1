// The process runtime end to end: the real server binary, real forked processes, real signals.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/server_harness.h"

namespace sprocket::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Unit(const std::string& name) {
  return Runfile(absl::StrCat("sprocket/tests/integration/units/lib", name, ".so"));
}

// One [[process]] table; `extra` adds raw TOML lines.
std::string ProcessToml(const std::string& name, const std::string& unit, const std::string& cls,
                        int count, const std::string& dir, const std::string& extra = "") {
  return absl::StrCat("[[process]]\nname = \"", name, "\"\nunit = \"", unit, "\"\nclass = \"",
                      cls, "\"\ncount = ", count, "\narg = { dir = \"", dir, "\" }\n", extra,
                      "\n");
}

std::string Cmdline(pid_t pid) {
  std::string s = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/cmdline"));
  return s.substr(0, s.find('\0'));
}

bool MapsMention(pid_t pid, const std::string& needle) {
  return ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/maps")).find(needle) != std::string::npos;
}

class RuntimeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- server log ----\n" << server_.Log() << "--------------------\n";
    }
  }
  ServerUnderTest server_;
};

TEST_F(RuntimeTest, HotRestartLoadsTheUnitNowOnDisk) {
  const std::string unit = server_.dir() + "/libversion.so";
  ReplaceFile(Unit("version_a"), unit);
  ASSERT_TRUE(server_.Start(ProcessToml("ver", unit, "VersionProcess", 2, server_.dir())).ok());
  ASSERT_TRUE(server_.WaitForState("ver", 0, "running"));
  ASSERT_TRUE(server_.WaitForState("ver", 1, "running"));
  const pid_t old0 = server_.PidFile("ver", 0);
  const pid_t old1 = server_.PidFile("ver", 1);
  const std::string version0 = server_.dir() + "/version.ver.0";
  const std::string version1 = server_.dir() + "/version.ver.1";
  ASSERT_TRUE(WaitUntil([&] { return ReadFileOrEmpty(version0) == absl::StrCat("a ", old0, "\n"); }));
  ASSERT_TRUE(WaitUntil([&] { return ReadFileOrEmpty(version1) == absl::StrCat("a ", old1, "\n"); }));

  ReplaceFile(Unit("version_b"), unit);  // a deploy: rename over the configured path
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(old0, SIGTERM), 0);

  pid_t new0 = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        new0 = server_.PidFile("ver", 0);
        return new0 != 0 && new0 != old0 &&
               ReadFileOrEmpty(version0) == absl::StrCat("b ", new0, "\n");
      },
      std::chrono::seconds(1)))
      << "within 1 s of the kill, NAME.0.pid must name a new process running version b";
  EXPECT_LT(std::chrono::steady_clock::now() - killed_at, std::chrono::seconds(1));
  EXPECT_EQ(ReadFileOrEmpty(absl::StrCat(server_.dir(), "/shutdown.", old0)), "a\n")
      << "OnShutdown ran in the old process";
  EXPECT_FALSE(IsAlive(old0));
  std::optional<SlotRecord> slot0 = server_.Slot("ver", 0);
  ASSERT_TRUE(slot0.has_value());
  EXPECT_EQ(slot0->pid, new0);
  EXPECT_EQ(slot0->restarts, 1);
  EXPECT_EQ(slot0->last_exit, "exit 0");

  // Instance 1 was not touched: same pid, still the old build.
  EXPECT_EQ(server_.PidFile("ver", 1), old1);
  EXPECT_TRUE(IsAlive(old1));
  EXPECT_EQ(ReadFileOrEmpty(version1), absl::StrCat("a ", old1, "\n"));
  EXPECT_TRUE(MapsMention(old1, "libversion.so"));
  EXPECT_TRUE(MapsMention(new0, "libversion.so"));

  // Neither the manager nor the master ever mapped a unit.
  const pid_t manager = server_.ManagerPid();
  ASSERT_TRUE(IsAlive(manager));
  EXPECT_FALSE(MapsMention(manager, ".so (deleted)"));
  EXPECT_FALSE(MapsMention(manager, "libversion"));
  EXPECT_FALSE(MapsMention(server_.master(), "libversion"));
  EXPECT_TRUE(MapsMention(manager, "libglog"));  // the check reads real maps
  EXPECT_EQ(server_.Stop(), 0);
}

// The successor is forked, and loads the unit now on disk, while the old instance runs
// OnShutdown (off the critical path); its own user code runs only once the old one is gone.
TEST_F(RuntimeTest, TheSuccessorIsForkedAheadButRunsOnlyAfterTheOldInstanceExits) {
  const std::string unit = server_.dir() + "/libversion.so";
  ReplaceFile(Unit("version_a"), unit);
  ASSERT_TRUE(server_.Start(ProcessToml("slow", unit, "SlowShutdownVersion", 1, server_.dir())).ok());
  ASSERT_TRUE(server_.WaitForState("slow", 0, "running"));
  const pid_t old = server_.PidFile("slow", 0);
  ReplaceFile(Unit("version_b"), unit);  // the deploy, then the kill
  ASSERT_EQ(::kill(old, SIGTERM), 0);
  // Two processes with the slot's title: the old one shutting down, and its successor waiting.
  pid_t ahead = 0;
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      pid_t pid = 0;
      if (absl::SimpleAtoi(entry.path().filename().string(), &pid) && pid != old &&
          Cmdline(pid) == "sprocket: process slow 0") {
        ahead = pid;
      }
    }
    return ahead != 0;
  }, std::chrono::milliseconds(250)));
  EXPECT_TRUE(IsAlive(old)) << "forked while the old instance was still shutting down";
  const std::string shutdown = absl::StrCat(server_.dir(), "/shutdown.", old);
  bool shutdown_done_first = false;
  ASSERT_TRUE(WaitUntil([&] {
    if (ReadFileOrEmpty(server_.dir() + "/version.slow.0") != absl::StrCat("b ", ahead, "\n")) {
      return false;
    }
    shutdown_done_first = ReadFileOrEmpty(shutdown) == "a\n";
    return true;
  }, std::chrono::seconds(2))) << ReadFileOrEmpty(server_.dir() + "/version.slow.0");
  EXPECT_TRUE(shutdown_done_first) << "Run began only after the old OnShutdown finished";
  EXPECT_TRUE(WaitUntil([&] { return server_.PidFile("slow", 0) == ahead; }));
  EXPECT_EQ(server_.Stop(), 0);
}

TEST_F(RuntimeTest, EmbeddedDefaultRunsTheSeedProcessesWithTitles) {
  ASSERT_TRUE(server_.Start("").ok());
  for (auto [name, index] : {std::pair{"testProcess", 0}, {"testProcess", 1}, {"processReload", 0}}) {
    ASSERT_TRUE(server_.WaitForState(name, index, "running")) << name << " " << index;
    EXPECT_EQ(Cmdline(server_.PidFile(name, index)),
              absl::StrCat("sprocket: process ", name, " ", index));
  }
  EXPECT_EQ(Cmdline(server_.master()), "sprocket: master");
  EXPECT_EQ(Cmdline(server_.ManagerPid()), "sprocket: manager");
  EXPECT_TRUE(WaitUntil([&] {
    return server_.Log().find("process testProcess 1 started with arg {\"arg1\":") !=
           std::string::npos;
  }));
  // The timer process logs every 3 s.
  EXPECT_TRUE(WaitUntil([&] { return server_.Log().find("Work::Run in processReload") !=
                                     std::string::npos; },
                        std::chrono::seconds(5)));
  EXPECT_THAT(server_.Log(), HasSubstr(server_.run_dir() + "/processes.json"))
      << "the server says where the pid registry is";
}

TEST_F(RuntimeTest, StopRunsOnShutdownEverywhereAndRemovesTheRegistry) {
  ASSERT_TRUE(server_.Start(ProcessToml("ver", Unit("version_a"), "VersionProcess", 3,
                                        server_.dir())).ok());
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(server_.WaitForState("ver", i, "running"));
    pids.push_back(server_.PidFile("ver", i));
  }
  const pid_t manager = server_.ManagerPid();
  EXPECT_EQ(server_.Stop(), 0);
  for (pid_t pid : pids) {
    EXPECT_EQ(ReadFileOrEmpty(absl::StrCat(server_.dir(), "/shutdown.", pid)), "a\n");
    EXPECT_FALSE(IsAlive(pid));
  }
  EXPECT_FALSE(IsAlive(manager));
  std::vector<std::string> left;
  for (const auto& entry : std::filesystem::directory_iterator(server_.run_dir())) {
    left.push_back(entry.path().filename());
  }
  EXPECT_TRUE(left.empty()) << "left in the run dir: " << left.size() << " files, first "
                            << (left.empty() ? "" : left[0]);
}

TEST_F(RuntimeTest, SecondServerOnTheSameRunDirRefuses) {
  const std::string config = ProcessToml("ver", Unit("version_a"), "VersionProcess", 1, server_.dir());
  ASSERT_TRUE(server_.Start(config).ok());
  ASSERT_TRUE(server_.WaitForState("ver", 0, "running"));
  const pid_t pid = server_.PidFile("ver", 0);

  ServerUnderTest second;
  std::filesystem::remove_all(second.dir());
  std::filesystem::create_directories(second.dir());
  const int code = second.RunToExit(config, {"--run_dir=" + server_.run_dir()});
  EXPECT_EQ(code, 1);
  EXPECT_THAT(second.Log(), HasSubstr(absl::StrCat("in use by a running sprocket master (pid ",
                                                   server_.master(), ")")));
  EXPECT_EQ(server_.PidFile("ver", 0), pid) << "the first server is untouched";
  EXPECT_TRUE(IsAlive(pid));
  EXPECT_EQ(ReadFileOrEmpty(server_.run_dir() + "/master.pid"),
            absl::StrCat(server_.master(), "\n"));
}

TEST_F(RuntimeTest, StaleRegistryFromACrashedRunIsReplaced) {
  std::filesystem::create_directories(server_.run_dir());
  WriteFile(server_.run_dir() + "/master.pid", "999999\n");
  WriteFile(server_.run_dir() + "/manager.pid", "999998\n");
  WriteFile(server_.run_dir() + "/ver.0.pid", "999997\n");
  WriteFile(server_.run_dir() + "/gone.3.pid", "999996\n");
  WriteFile(server_.run_dir() + "/processes.json", "{\"slots\": [garbage");
  ASSERT_TRUE(server_.Start(ProcessToml("ver", Unit("version_a"), "VersionProcess", 1,
                                        server_.dir())).ok());
  ASSERT_TRUE(server_.WaitForState("ver", 0, "running"));
  EXPECT_NE(server_.PidFile("ver", 0), 999997);
  EXPECT_TRUE(IsAlive(server_.PidFile("ver", 0)));
  EXPECT_FALSE(std::filesystem::exists(server_.run_dir() + "/gone.3.pid"));
  std::vector<SlotRecord> slots = server_.Slots();
  EXPECT_EQ(std::count_if(slots.begin(), slots.end(),
                          [](const SlotRecord& r) { return r.kind == "process"; }),
            1);
  EXPECT_THAT(server_.Log(), HasSubstr("stale pid registry"));
  EXPECT_THAT(server_.Log(), HasSubstr("left by pid 999999"));
}

TEST_F(RuntimeTest, SigkillOfTheMasterLeavesNothingBehind) {
  ASSERT_TRUE(server_.Start(ProcessToml("ver", Unit("version_a"), "VersionProcess", 2,
                                        server_.dir())).ok());
  ASSERT_TRUE(server_.WaitForState("ver", 0, "running"));
  ASSERT_TRUE(server_.WaitForState("ver", 1, "running"));
  const std::vector<pid_t> pids = {server_.ManagerPid(), server_.PidFile("ver", 0),
                                   server_.PidFile("ver", 1)};
  for (pid_t pid : pids) {
    ASSERT_TRUE(IsAlive(pid));
  }
  ASSERT_EQ(::kill(server_.master(), SIGKILL), 0);
  EXPECT_TRUE(WaitUntil(
      [&] {
        for (pid_t pid : pids) {
          if (IsAlive(pid)) {
            return false;
          }
        }
        return true;
      },
      std::chrono::seconds(2)))
      << "manager and children must die with the master";
}

TEST_F(RuntimeTest, ManagerKilledIsReplacedAndRestartsEverySlot) {
  ASSERT_TRUE(server_.Start(ProcessToml("ver", Unit("version_a"), "VersionProcess", 1,
                                        server_.dir())).ok());
  ASSERT_TRUE(server_.WaitForState("ver", 0, "running"));
  const pid_t manager = server_.ManagerPid();
  const pid_t child = server_.PidFile("ver", 0);
  ASSERT_EQ(::kill(manager, SIGKILL), 0);
  EXPECT_TRUE(WaitUntil([&] { return !IsAlive(child); }, std::chrono::seconds(2)));
  EXPECT_TRUE(WaitUntil(
      [&] {
        const pid_t now = server_.PidFile("ver", 0);
        return server_.ManagerPid() != manager && now != 0 && now != child && IsAlive(now);
      },
      std::chrono::seconds(3)));
  EXPECT_EQ(server_.Stop(), 0);
}

TEST_F(RuntimeTest, CrashLoopIsSpacedOutNotAForkStorm) {
  ASSERT_TRUE(server_.Start(ProcessToml("crash", Unit("behaviour"), "ExitAtOnce", 1,
                                        server_.dir(),
                                        "[process.restart]\nbackoff_start_ms = 100\n"
                                        "backoff_max_ms = 400\n")).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  std::optional<SlotRecord> slot = server_.Slot("crash", 0);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->state, "backoff");
  EXPECT_EQ(slot->last_exit, "exit 3");
  EXPECT_THAT(slot->reason, HasSubstr("exit 3"));
  // Starts at 0, then after 100, 200, 400, 400 ms...: at most 7 in 1.6 s, never hundreds.
  std::vector<std::string> lines =
      absl::StrSplit(ReadFileOrEmpty(server_.dir() + "/starts.crash"), '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 3u);
  EXPECT_LE(lines.size(), 7u);
  std::vector<int64_t> at;
  for (const std::string& l : lines) {
    int64_t ms = 0;
    ASSERT_TRUE(absl::SimpleAtoi(l, &ms));
    at.push_back(ms);
  }
  EXPECT_GE(at[1] - at[0], 90);
  EXPECT_GE(at[2] - at[1], 190);
  if (at.size() > 4) {
    EXPECT_GE(at[4] - at[3], 390) << "capped at backoff_max";
    EXPECT_LE(at[4] - at[3], 600);
  }
  EXPECT_EQ(server_.Stop(), 0);
}

TEST_F(RuntimeTest, GiveUpAfterLeavesTheSlotFailed) {
  ASSERT_TRUE(server_.Start(ProcessToml("crash", Unit("behaviour"), "ExitAtOnce", 1,
                                        server_.dir(),
                                        "[process.restart]\nbackoff_start_ms = 10\n"
                                        "give_up_after = 3\n")).ok());
  ASSERT_TRUE(server_.WaitForState("crash", 0, "failed"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::vector<std::string> lines =
      absl::StrSplit(ReadFileOrEmpty(server_.dir() + "/starts.crash"), '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 3u);
  EXPECT_EQ(server_.Slot("crash", 0)->pid, 0);
  EXPECT_EQ(server_.Stop(), 0);
}

TEST_F(RuntimeTest, ExceptionGoesToOnExceptionThenTheProcessIsRespawned) {
  ASSERT_TRUE(server_.Start(ProcessToml("thrower", Unit("behaviour"), "ThrowInRun", 1,
                                        server_.dir())).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::optional<SlotRecord> s = server_.Slot("thrower", 0);
        return s && s->restarts >= 2;
      },
      std::chrono::seconds(3)));
  std::optional<SlotRecord> slot = server_.Slot("thrower", 0);
  EXPECT_EQ(slot->last_exit, "exit 70");
  EXPECT_THAT(slot->reason, HasSubstr("exception"));
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(server_.dir())) {
    if (entry.path().filename().string().rfind("exception.", 0) == 0) {
      ++files;
      EXPECT_EQ(ReadFileOrEmpty(entry.path()), "thrown from Run\n");
    }
  }
  EXPECT_GE(files, 2) << "each instance's OnException saw the exception";
  EXPECT_EQ(server_.Stop(), 0);
}

TEST_F(RuntimeTest, OnExceptionOverrideThatReturnsKeepsTheProcess) {
  ASSERT_TRUE(server_.Start(ProcessToml("catcher", Unit("behaviour"), "ThrowInTimer", 1,
                                        server_.dir())).ok());
  ASSERT_TRUE(server_.WaitForState("catcher", 0, "running"));
  const pid_t pid = server_.PidFile("catcher", 0);
  const std::string caught = absl::StrCat(server_.dir(), "/caught.", pid);
  ASSERT_TRUE(WaitUntil([&] { return ReadFileOrEmpty(caught) == "thrown from a timer\n"; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(IsAlive(pid));
  EXPECT_EQ(server_.Slot("catcher", 0)->restarts, 0);
  EXPECT_EQ(server_.Stop(), 0);
}

TEST_F(RuntimeTest, OnShutdownIsBoundedByMaxExitWait) {
  ASSERT_TRUE(server_.Start(ProcessToml("hang", Unit("behaviour"), "HangOnShutdown", 1,
                                        server_.dir(), "max_exit_wait_ms = 300\n")).ok());
  ASSERT_TRUE(server_.WaitForState("hang", 0, "running"));
  const pid_t pid = server_.PidFile("hang", 0);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  ASSERT_TRUE(WaitUntil([&] { return !IsAlive(pid); }, std::chrono::seconds(2)));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(250));
  EXPECT_LT(took, std::chrono::milliseconds(1500));
  EXPECT_EQ(ReadFileOrEmpty(absl::StrCat(server_.dir(), "/hanging.", pid)), "1\n");
  ASSERT_TRUE(WaitUntil([&] {
    const pid_t now = server_.PidFile("hang", 0);
    return now != 0 && now != pid;
  }));
  EXPECT_THAT(server_.Slot("hang", 0)->last_exit, HasSubstr("SIGALRM"));
  // Stopping the server is bounded the same way.
  const auto stop_start = std::chrono::steady_clock::now();
  EXPECT_EQ(server_.Stop(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - stop_start, std::chrono::seconds(3));
}

TEST_F(RuntimeTest, TimerLoopAfterAndClear) {
  ASSERT_TRUE(server_.Start(ProcessToml("timers", Unit("behaviour"), "Timers", 1,
                                        server_.dir())).ok());
  // ticks=5 (the loop cleared itself), Clear in the callback true, Clear of a pending After
  // true, the cleared After never ran, and the loop was already gone afterwards.
  EXPECT_TRUE(WaitUntil([&] { return ReadFileOrEmpty(server_.dir() + "/timers") == "5 1 1 0 0\n"; },
                        std::chrono::seconds(3)))
      << ReadFileOrEmpty(server_.dir() + "/timers");
  EXPECT_EQ(server_.Stop(), 0);
}

// Each way a unit can be broken: clear reason in the registry, backoff, and the healthy
// process beside it keeps running with the same pid.
struct BadUnitCase {
  std::string label;
  std::string unit;  // runfile name or "" for the path in `path`
  std::string cls;
  std::string reason;
  std::string exit;
};

class BadUnitTest : public RuntimeTest, public ::testing::WithParamInterface<BadUnitCase> {};

TEST_P(BadUnitTest, IsReportedAndTheRestKeepsRunning) {
  const BadUnitCase& c = GetParam();
  const std::string config =
      ProcessToml("good", Unit("version_a"), "VersionProcess", 1, server_.dir()) +
      ProcessToml("bad", Unit(c.unit), c.cls, 1, server_.dir());
  ASSERT_TRUE(server_.Start(config).ok());
  ASSERT_TRUE(server_.WaitForState("good", 0, "running"));
  const pid_t good = server_.PidFile("good", 0);
  ASSERT_TRUE(server_.WaitForState("bad", 0, "backoff"));
  std::optional<SlotRecord> bad = server_.Slot("bad", 0);
  EXPECT_THAT(bad->reason, HasSubstr(c.reason));
  EXPECT_EQ(bad->last_exit, c.exit);
  EXPECT_THAT(server_.Log(), HasSubstr(c.reason));
  // It keeps trying, spaced out; the good process is never disturbed.
  ASSERT_TRUE(WaitUntil([&] { return server_.Slot("bad", 0)->restarts >= 2; },
                        std::chrono::seconds(3)));
  EXPECT_EQ(server_.PidFile("good", 0), good);
  EXPECT_EQ(server_.Slot("good", 0)->state, "running");
  EXPECT_EQ(server_.Stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, BadUnitTest,
    ::testing::Values(
        BadUnitCase{"MissingSymbol", "missing_symbol", "NeedsMissingSymbol",
                    "undefined symbol: sprocket_test_symbol_nobody_defines", "exit 80"},
        BadUnitCase{"OtherAbiVersion", "other_abi", "Anything",
                    "was built for unit ABI version 99; this server speaks version 1", "exit 82"},
        BadUnitCase{"NoEntryPoint", "no_entry", "Anything", "has no sprocket_unit_entry",
                    "exit 81"},
        BadUnitCase{"UnknownClass", "version_a", "Nope",
                    "registers no process class 'Nope' (it has: process SlowShutdownVersion, process VersionProcess)",
                    "exit 83"},
        BadUnitCase{"ConstructorThrows", "behaviour", "ThrowInConstructor",
                    "class 'ThrowInConstructor': constructor threw: boom", "exit 84"}),
    [](const ::testing::TestParamInfo<BadUnitCase>& info) { return info.param.label; });

TEST_F(RuntimeTest, UnitFileDeletedBeforeRespawnIsReportedAndRetried) {
  const std::string unit = server_.dir() + "/libversion.so";
  ReplaceFile(Unit("version_a"), unit);
  ASSERT_TRUE(server_.Start(ProcessToml("ver", unit, "VersionProcess", 1, server_.dir())).ok());
  ASSERT_TRUE(server_.WaitForState("ver", 0, "running"));
  std::filesystem::remove(unit);
  ASSERT_EQ(::kill(server_.PidFile("ver", 0), SIGTERM), 0);
  ASSERT_TRUE(server_.WaitForState("ver", 0, "backoff"));
  EXPECT_THAT(server_.Slot("ver", 0)->reason,
              HasSubstr("cannot open shared object file: No such file or directory"));
  // Putting the unit back heals the slot on the next try.
  ReplaceFile(Unit("version_a"), unit);
  EXPECT_TRUE(server_.WaitForState("ver", 0, "running", std::chrono::seconds(3)));
  EXPECT_EQ(server_.Slot("ver", 0)->reason, "");
  EXPECT_EQ(server_.Stop(), 0);
}

TEST_F(RuntimeTest, BadConfigStartsNothing) {
  const std::string config = ProcessToml("ver", Unit("version_a"), "VersionProcess", 1,
                                         server_.dir(), "colour = \"blue\"\n");
  EXPECT_EQ(server_.RunToExit(config), 2);
  EXPECT_THAT(server_.Log(), HasSubstr(server_.config_path() + ":7:"));
  EXPECT_THAT(server_.Log(), HasSubstr("unknown field 'colour'"));
  EXPECT_FALSE(std::filesystem::exists(server_.run_dir())) << "nothing was started";
}

TEST_F(RuntimeTest, DuplicateNameInConfigStartsNothing) {
  const std::string config =
      ProcessToml("ver", Unit("version_a"), "VersionProcess", 1, server_.dir()) +
      ProcessToml("ver", Unit("version_b"), "VersionProcess", 1, server_.dir());
  EXPECT_EQ(server_.RunToExit(config), 2);
  EXPECT_THAT(server_.Log(), HasSubstr("duplicate name"));
  EXPECT_FALSE(std::filesystem::exists(server_.run_dir()));
}

}  // namespace
}  // namespace sprocket::testing
