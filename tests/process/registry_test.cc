// Tests for process/registry.h against a real runtime dir under $TEST_TMPDIR: the master's flock
// on master.pid (also from a forked child), stale-file cleanup, and the files the manager writes.
#include "process/registry.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sprocket {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (fs::path(::testing::TempDir()) / "registry_test" / info->name()).string();
    fs::remove_all(dir_);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  void WriteFile(const std::string& name, const std::string& contents) {
    fs::create_directories(dir_);
    std::ofstream(Path(name)) << contents;
  }

  std::string ReadFile(const std::string& name) const {
    std::ifstream in(Path(name));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  bool Exists(const std::string& name) const { return fs::exists(Path(name)); }

  // The names of the files in the dir.
  std::set<std::string> Files() const {
    std::set<std::string> out;
    for (const fs::directory_entry& e : fs::directory_iterator(dir_)) {
      out.insert(e.path().filename().string());
    }
    return out;
  }

  std::string dir_;
};

std::string PidLine(pid_t pid) { return absl::StrCat(pid, "\n"); }

SlotRecord MakeSlot(const std::string& name, int index, pid_t pid) {
  SlotRecord r;
  r.kind = "process";
  r.name = name;
  r.group = "group:" + name;
  r.index = index;
  r.pid = pid;
  r.start_time = 1234567890123ull + static_cast<std::uint64_t>(index);
  r.state = pid == 0 ? "backoff" : "running";
  r.restarts = 3 + index;
  r.last_exit = "signal 9 (SIGKILL)";
  r.reason = index == 0 ? "" : "unit load failed: \"quoted\"";
  r.unit = "/opt/app/lib" + name + ".so";
  return r;
}

void ExpectSameRecord(const SlotRecord& got, const SlotRecord& want) {
  EXPECT_EQ(got.kind, want.kind);
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.group, want.group);
  EXPECT_EQ(got.index, want.index);
  EXPECT_EQ(got.pid, want.pid);
  EXPECT_EQ(got.start_time, want.start_time);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.restarts, want.restarts);
  EXPECT_EQ(got.last_exit, want.last_exit);
  EXPECT_EQ(got.reason, want.reason);
  EXPECT_EQ(got.unit, want.unit);
}

// ---- RunDirLock ----

TEST_F(RegistryTest, AcquireCreatesTheDirAndWritesOurPid) {
  dir_ += "/nested/run";
  ASSERT_FALSE(fs::exists(dir_));
  absl::StatusOr<RunDirLock> lock = RunDirLock::Acquire(dir_);
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_TRUE(fs::is_directory(dir_));
  EXPECT_EQ(lock->dir(), dir_);
  EXPECT_GE(lock->fd(), 0);
  EXPECT_EQ(ReadFile(kMasterPidFile), PidLine(::getpid()));
  EXPECT_EQ(lock->stale_files(), 0);
  EXPECT_EQ(lock->stale_pid(), 0);
}

TEST_F(RegistryTest, SecondAcquireInTheSameProcessFailsNamingDirAndHolder) {
  absl::StatusOr<RunDirLock> first = RunDirLock::Acquire(dir_);
  ASSERT_TRUE(first.ok()) << first.status();

  // flock belongs to the open file description, and Acquire opens master.pid afresh.
  absl::StatusOr<RunDirLock> second = RunDirLock::Acquire(dir_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  const std::string message(second.status().message());
  EXPECT_THAT(message, HasSubstr(dir_));
  EXPECT_THAT(message, HasSubstr(absl::StrCat("pid ", ::getpid())));
  // The failed attempt left the holder's file alone.
  EXPECT_EQ(ReadFile(kMasterPidFile), PidLine(::getpid()));
}

TEST_F(RegistryTest, AcquireFromAnotherProcessFailsWhileHeld) {
  absl::StatusOr<RunDirLock> held = RunDirLock::Acquire(dir_);
  ASSERT_TRUE(held.ok()) << held.status();
  const std::string holder = absl::StrCat("pid ", ::getpid());

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // 0: refused and named dir and holder; 1: acquired; 2: refused with the wrong message.
    absl::StatusOr<RunDirLock> lock = RunDirLock::Acquire(dir_);
    if (lock.ok()) {
      // Do not let the destructor unlink the parent's master.pid.
      ::_exit(1);
    }
    const std::string message(lock.status().message());
    const bool named = message.find(dir_) != std::string::npos &&
                       message.find(holder) != std::string::npos &&
                       lock.status().code() == absl::StatusCode::kAlreadyExists;
    ::_exit(named ? 0 : 2);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "1 = child acquired the held lock, 2 = wrong message";
  EXPECT_EQ(ReadFile(kMasterPidFile), PidLine(::getpid()));
}

TEST_F(RegistryTest, AcquireSucceedsAgainOnceTheLockIsReleased) {
  {
    absl::StatusOr<RunDirLock> first = RunDirLock::Acquire(dir_);
    ASSERT_TRUE(first.ok()) << first.status();
  }
  absl::StatusOr<RunDirLock> again = RunDirLock::Acquire(dir_);
  ASSERT_TRUE(again.ok()) << again.status();
  // A clean shutdown leaves nothing to call stale.
  EXPECT_EQ(again->stale_pid(), 0);
  EXPECT_EQ(again->stale_files(), 0);
}

TEST_F(RegistryTest, AcquireRemovesAndCountsStaleFiles) {
  WriteFile(kMasterPidFile, "12345\n");
  WriteFile("testProcess.0.pid", "2001\n");
  WriteFile(kManagerPidFile, "2000\n");
  WriteFile(kRegistryJson, "{\"slots\": []}\n");
  WriteFile(absl::StrCat(kRegistryJson, ".tmp"), "{\"slo");
  WriteFile("notes.txt", "not ours");

  absl::StatusOr<RunDirLock> lock = RunDirLock::Acquire(dir_);
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(lock->stale_files(), 4);
  EXPECT_EQ(lock->stale_pid(), 12345);
  EXPECT_THAT(Files(), UnorderedElementsAre(kMasterPidFile, "notes.txt"));
  // The old content was replaced, not appended to.
  EXPECT_EQ(ReadFile(kMasterPidFile), PidLine(::getpid()));
}

TEST_F(RegistryTest, AcquireRemovesAnInterruptedPidFileWrite) {
  WriteFile("jobs.3.pid.tmp", "77");
  absl::StatusOr<RunDirLock> lock = RunDirLock::Acquire(dir_);
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(lock->stale_files(), 1);
  EXPECT_FALSE(Exists("jobs.3.pid.tmp"));
}

TEST_F(RegistryTest, LongerStalePidIsFullyOverwritten) {
  // A stale pid with more digits than ours must not leave a tail behind.
  WriteFile(kMasterPidFile, "99999999999\n");
  absl::StatusOr<RunDirLock> lock = RunDirLock::Acquire(dir_);
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(ReadFile(kMasterPidFile), PidLine(::getpid()));
}

TEST_F(RegistryTest, DestroyingTheLockRemovesMasterPid) {
  {
    absl::StatusOr<RunDirLock> lock = RunDirLock::Acquire(dir_);
    ASSERT_TRUE(lock.ok()) << lock.status();
    ASSERT_TRUE(Exists(kMasterPidFile));
  }
  EXPECT_FALSE(Exists(kMasterPidFile));
  EXPECT_TRUE(fs::is_directory(dir_));
}

TEST_F(RegistryTest, MovedFromLockDoesNotRemoveMasterPid) {
  absl::StatusOr<RunDirLock> lock = RunDirLock::Acquire(dir_);
  ASSERT_TRUE(lock.ok()) << lock.status();
  {
    RunDirLock moved = *std::move(lock);
    lock = absl::InternalError("moved away");  // destroys the moved-from lock
    EXPECT_TRUE(Exists(kMasterPidFile));
    EXPECT_EQ(moved.dir(), dir_);
    // Still held: the new owner keeps the flock.
    EXPECT_FALSE(RunDirLock::Acquire(dir_).ok());
  }
  EXPECT_FALSE(Exists(kMasterPidFile));
}

TEST_F(RegistryTest, AcquireFailsWhenTheDirCannotBeCreated) {
  WriteFile("plain_file", "x");
  absl::StatusOr<RunDirLock> lock = RunDirLock::Acquire(Path("plain_file") + "/run");
  ASSERT_FALSE(lock.ok());
  EXPECT_THAT(std::string(lock.status().message()), HasSubstr(Path("plain_file")));
}

// ---- Registry ----

TEST_F(RegistryTest, WriteProducesJsonThatReadsBackFieldByField) {
  fs::create_directories(dir_);
  Registry registry(dir_);
  EXPECT_EQ(registry.dir(), dir_);
  const std::vector<SlotRecord> slots = {MakeSlot("testProcess", 0, 4242),
                                         MakeSlot("testProcess", 1, 0), MakeSlot("jobs", 0, 4343)};
  ASSERT_TRUE(registry.Write(slots).ok());

  absl::StatusOr<std::vector<SlotRecord>> read = ReadRegistry(dir_);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), slots.size());
  for (std::size_t i = 0; i < slots.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("slot ", i));
    ExpectSameRecord((*read)[i], slots[i]);
  }
  const nlohmann::json doc = nlohmann::json::parse(ReadFile(kRegistryJson));
  EXPECT_EQ(doc.at("manager_pid").get<pid_t>(), ::getpid());
}

TEST_F(RegistryTest, WriteCreatesOnePidFilePerRunningSlot) {
  fs::create_directories(dir_);
  Registry registry(dir_);
  ASSERT_TRUE(registry
                  .Write({MakeSlot("testProcess", 0, 4242), MakeSlot("testProcess", 1, 0),
                          MakeSlot("jobs", 2, 4343)})
                  .ok());
  EXPECT_EQ(ReadFile("testProcess.0.pid"), "4242\n");
  EXPECT_EQ(ReadFile("jobs.2.pid"), "4343\n");
  EXPECT_FALSE(Exists("testProcess.1.pid"));
  // Every write went through a temp file and a rename.
  EXPECT_THAT(Files(), UnorderedElementsAre("testProcess.0.pid", "jobs.2.pid", kRegistryJson));
}

TEST_F(RegistryTest, WriteRewritesThePidFileWhenThePidChanges) {
  fs::create_directories(dir_);
  Registry registry(dir_);
  ASSERT_TRUE(registry.Write({MakeSlot("testProcess", 0, 4242)}).ok());
  ASSERT_EQ(ReadFile("testProcess.0.pid"), "4242\n");
  ASSERT_TRUE(registry.Write({MakeSlot("testProcess", 0, 5151)}).ok());
  EXPECT_EQ(ReadFile("testProcess.0.pid"), "5151\n");
  absl::StatusOr<std::vector<SlotRecord>> read = ReadRegistry(dir_);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ((*read)[0].pid, 5151);
}

TEST_F(RegistryTest, WriteRemovesThePidFileWhenThePidBecomesZeroAndRecreatesIt) {
  fs::create_directories(dir_);
  Registry registry(dir_);
  ASSERT_TRUE(registry.Write({MakeSlot("testProcess", 0, 4242)}).ok());
  ASSERT_TRUE(Exists("testProcess.0.pid"));
  ASSERT_TRUE(registry.Write({MakeSlot("testProcess", 0, 0)}).ok());
  EXPECT_FALSE(Exists("testProcess.0.pid"));
  // The respawned process gets its file back, even with the pid it had before.
  ASSERT_TRUE(registry.Write({MakeSlot("testProcess", 0, 4242)}).ok());
  EXPECT_EQ(ReadFile("testProcess.0.pid"), "4242\n");
}

TEST_F(RegistryTest, RemoveSlotFilesRemovesPidFilesAndJsonButNotMasterPid) {
  absl::StatusOr<RunDirLock> lock = RunDirLock::Acquire(dir_);
  ASSERT_TRUE(lock.ok()) << lock.status();
  Registry registry(dir_);
  ASSERT_TRUE(registry.Write({MakeSlot("a", 0, 11), MakeSlot("a", 1, 12), MakeSlot("b", 0, 13)})
                  .ok());
  ASSERT_THAT(Files(),
              UnorderedElementsAre(kMasterPidFile, "a.0.pid", "a.1.pid", "b.0.pid", kRegistryJson));
  registry.RemoveSlotFiles();
  EXPECT_THAT(Files(), UnorderedElementsAre(kMasterPidFile));
  // A later write starts from scratch: every running slot's file is written again.
  ASSERT_TRUE(registry.Write({MakeSlot("a", 0, 11)}).ok());
  EXPECT_EQ(ReadFile("a.0.pid"), "11\n");
}

TEST_F(RegistryTest, WriteIntoAMissingDirIsAnError) {
  Registry registry(dir_ + "/missing");
  EXPECT_FALSE(registry.Write({MakeSlot("a", 0, 11)}).ok());
}

// ---- ReadRegistry ----

TEST_F(RegistryTest, ReadRegistryWithoutAFileIsNotFound) {
  fs::create_directories(dir_);
  absl::StatusOr<std::vector<SlotRecord>> read = ReadRegistry(dir_);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RegistryTest, ReadRegistryOnMalformedJsonIsAnError) {
  for (const std::string& text :
       {std::string("{\"slots\": [ {\"kind\": "), std::string("not json at all"),
        std::string("[]"), std::string("{\"slots\": {}}"), std::string("{}")}) {
    WriteFile(kRegistryJson, text);
    absl::StatusOr<std::vector<SlotRecord>> read = ReadRegistry(dir_);
    ASSERT_FALSE(read.ok()) << text;
    EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << text;
    EXPECT_THAT(std::string(read.status().message()), HasSubstr(kRegistryJson)) << text;
  }
}

TEST_F(RegistryTest, ReadRegistryOnAnEntryMissingAFieldIsAnError) {
  nlohmann::json entry = ToJson(MakeSlot("a", 0, 11));
  entry.erase("unit");
  WriteFile(kRegistryJson, nlohmann::json{{"slots", {entry}}}.dump());
  absl::StatusOr<std::vector<SlotRecord>> read = ReadRegistry(dir_);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("malformed registry entry"));
}

TEST_F(RegistryTest, ReadRegistryOnAFieldOfTheWrongTypeIsAnError) {
  nlohmann::json entry = ToJson(MakeSlot("a", 0, 11));
  entry["pid"] = "eleven";
  WriteFile(kRegistryJson, nlohmann::json{{"slots", {entry}}}.dump());
  EXPECT_FALSE(ReadRegistry(dir_).ok());
}

TEST(SlotRecordJsonTest, ToJsonAndBackKeepsEveryField) {
  const SlotRecord want = MakeSlot("jobs", 7, 31337);
  absl::StatusOr<SlotRecord> got = SlotRecordFromJson(ToJson(want));
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameRecord(*got, want);
}

// ---- WriteFileAtomically / RemoveRegistryFiles ----

TEST_F(RegistryTest, WriteFileAtomicallyLeavesNoTempFile) {
  fs::create_directories(dir_);
  ASSERT_TRUE(WriteFileAtomically(Path("state"), "first\n").ok());
  EXPECT_EQ(ReadFile("state"), "first\n");
  // Replacing a longer file with a shorter one leaves only the new content.
  ASSERT_TRUE(WriteFileAtomically(Path("state"), "2\n").ok());
  EXPECT_EQ(ReadFile("state"), "2\n");
  EXPECT_THAT(Files(), UnorderedElementsAre("state"));
}

TEST_F(RegistryTest, WriteFileAtomicallyReplacesTheInodeSoOpenReadersKeepTheOldContent) {
  fs::create_directories(dir_);
  ASSERT_TRUE(WriteFileAtomically(Path("state"), "old\n").ok());
  std::ifstream reader(Path("state"));
  ASSERT_TRUE(WriteFileAtomically(Path("state"), "new\n").ok());
  std::string line;
  std::getline(reader, line);
  EXPECT_EQ(line, "old");
  EXPECT_EQ(ReadFile("state"), "new\n");
}

TEST_F(RegistryTest, WriteFileAtomicallyIntoAMissingDirNamesThePath) {
  const absl::Status s = WriteFileAtomically(dir_ + "/missing/state", "x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("missing/state.tmp"));
}

TEST_F(RegistryTest, RemoveRegistryFilesKeepsMasterPidAndForeignFiles) {
  WriteFile(kMasterPidFile, "1\n");
  WriteFile(kManagerPidFile, "2\n");
  WriteFile("x.0.pid", "3\n");
  WriteFile("x.0.pid.tmp", "3");
  WriteFile(kRegistryJson, "{}");
  WriteFile("README", "keep");
  EXPECT_EQ(RemoveRegistryFiles(dir_), 4);
  EXPECT_THAT(Files(), UnorderedElementsAre(kMasterPidFile, "README"));
  EXPECT_EQ(RemoveRegistryFiles(dir_), 0);
}

TEST_F(RegistryTest, RemoveRegistryFilesOnAMissingDirRemovesNothing) {
  EXPECT_EQ(RemoveRegistryFiles(dir_ + "/missing"), 0);
}

}  // namespace
}  // namespace sprocket
