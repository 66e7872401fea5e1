// Tests for server/config.h against real files under $TEST_TMPDIR: every error must name the file,
// the line and the field, since that message is all an operator gets when the server won't start.
#include "server/config.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sprocket {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One folder per test, so relative units and file names never leak between tests.
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) / info->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    unit_ = Write("libunit.so", "");
  }

  // Writes `contents` to DIR/NAME and returns its path.
  std::string Write(const std::string& name, const std::string& contents) {
    std::filesystem::path path = dir_ / name;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << contents;
    return path.string();
  }

  // Writes a config file and loads it; expects an error and returns its message.
  std::string LoadError(const std::string& toml) {
    path_ = Write("sprocket.toml", toml);
    absl::StatusOr<ServerConfig> config = LoadConfigFile(path_);
    EXPECT_FALSE(config.ok());
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    std::string message(config.status().message());
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
    return message;
  }

  // "PATH:LINE:", the prefix every located error starts with.
  std::string At(int line) const { return absl::StrCat(path_, ":", line, ":"); }

  // A valid [[process]] table whose unit exists, for tests that break one thing after it.
  std::string ValidProcess(const std::string& name) const {
    return absl::StrCat("[[process]]\nname = \"", name, "\"\nunit = \"", unit_,
                        "\"\nclass = \"Worker\"\n");
  }

  std::filesystem::path dir_;
  std::string unit_;
  std::string path_;
};

TEST_F(ConfigTest, LoadsEveryField) {
  path_ = Write("sprocket.toml", absl::StrCat(R"(run_dir = "/run/test"
[[process]]
name = "jobs-1_a"
group = "demo"
unit = ")",
                                              unit_, R"("
class = "TestProcess"
count = 2
arg = { arg1 = 1700000000, ratio = 0.5, on = true, list = [1, "two"], nested = { s = "x" }, when = 1979-05-27T07:32:00Z }
max_exit_wait_ms = 500
reload = true
[process.restart]
backoff_start_ms = 10
backoff_max_ms = 2000
stable_after_ms = 300
give_up_after = 4
)"));
  absl::StatusOr<ServerConfig> config = LoadConfigFile(path_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->run_dir, "/run/test");
  ASSERT_EQ(config->processes.size(), 1u);
  const ProcessConfig& p = config->processes[0];
  EXPECT_EQ(p.name, "jobs-1_a");
  EXPECT_EQ(p.group, "demo");
  EXPECT_EQ(p.unit, unit_);
  EXPECT_EQ(p.class_name, "TestProcess");
  EXPECT_EQ(p.count, 2);
  EXPECT_EQ(p.arg, nlohmann::json::parse(R"({"arg1": 1700000000, "ratio": 0.5, "on": true,
      "list": [1, "two"], "nested": {"s": "x"}, "when": "1979-05-27T07:32:00Z"})"));
  EXPECT_TRUE(p.arg["arg1"].is_number_integer());
  EXPECT_EQ(p.max_exit_wait, std::chrono::milliseconds(500));
  EXPECT_TRUE(p.reload);
  EXPECT_EQ(p.restart.backoff_start, std::chrono::milliseconds(10));
  EXPECT_EQ(p.restart.backoff_max, std::chrono::milliseconds(2000));
  EXPECT_EQ(p.restart.stable_after, std::chrono::milliseconds(300));
  EXPECT_EQ(p.restart.give_up_after, 4);
}

TEST_F(ConfigTest, OptionalFieldsKeepDefaults) {
  path_ = Write("sprocket.toml", ValidProcess("jobs"));
  absl::StatusOr<ServerConfig> config = LoadConfigFile(path_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->run_dir, "");
  ASSERT_EQ(config->processes.size(), 1u);
  const ProcessConfig& p = config->processes[0];
  const ProcessConfig defaults;
  EXPECT_EQ(p.group, "");
  EXPECT_EQ(p.count, defaults.count);
  EXPECT_EQ(p.arg, nlohmann::json::object());
  EXPECT_EQ(p.max_exit_wait, defaults.max_exit_wait);
  EXPECT_EQ(p.reload, defaults.reload);
  EXPECT_EQ(p.restart.backoff_start, defaults.restart.backoff_start);
  EXPECT_EQ(p.restart.backoff_max, defaults.restart.backoff_max);
  EXPECT_EQ(p.restart.give_up_after, defaults.restart.give_up_after);
}

TEST_F(ConfigTest, EmptyFileIsValid) {
  absl::StatusOr<ServerConfig> config = LoadConfigFile(Write("sprocket.toml", ""));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->processes.empty());
  EXPECT_EQ(config->run_dir, "");
}

TEST_F(ConfigTest, ResolvesRelativeUnitAgainstConfigFolder) {
  const std::string unit = Write("units/libseed.so", "");
  path_ = Write("etc/sprocket.toml", R"([[process]]
name = "seed"
unit = "../units/libseed.so"
class = "Seed"
)");
  absl::StatusOr<ServerConfig> config = LoadConfigFile(path_);
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->processes.size(), 1u);
  const std::string& resolved = config->processes[0].unit;
  EXPECT_TRUE(std::filesystem::path(resolved).is_absolute()) << resolved;
  EXPECT_EQ(resolved, std::filesystem::absolute(unit).lexically_normal().string());
}

TEST_F(ConfigTest, MissingConfigFileIsAnError) {
  const std::string path = (dir_ / "nope.toml").string();
  absl::StatusOr<ServerConfig> config = LoadConfigFile(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(path));
}

TEST_F(ConfigTest, SyntaxErrorNamesFileAndLine) {
  std::string message = LoadError("run_dir = \"/x\"\n[[process]]\nname = \"jobs\ncount = 2\n");
  EXPECT_THAT(message, StartsWith(At(3)));
  EXPECT_THAT(message, HasSubstr("not a valid string"));
}

// toml11's exception says line 1 for a bad date; the line must come from its report instead.
TEST_F(ConfigTest, SyntaxErrorInDateNamesItsLine) {
  std::string message = LoadError("\n\nwhen = 1979-13-45\n");
  EXPECT_THAT(message, StartsWith(At(3)));
  EXPECT_THAT(message, HasSubstr("invalid date"));
}

TEST_F(ConfigTest, KeyDefinedTwiceNamesSecondLine) {
  std::string message = LoadError(ValidProcess("jobs") + "class = \"Other\"\n");
  EXPECT_THAT(message, StartsWith(At(5)));
  EXPECT_THAT(message, HasSubstr("already exists"));
}

TEST_F(ConfigTest, UnknownProcessFieldNamesFieldAndLine) {
  std::string message = LoadError(ValidProcess("jobs") + "cuont = 2\n");
  EXPECT_THAT(message, StartsWith(At(5)));
  EXPECT_THAT(message, HasSubstr("process 'jobs': unknown field 'cuont'"));
}

TEST_F(ConfigTest, UnknownTopLevelFieldNamesFieldAndLine) {
  std::string message = LoadError("run_dir = \"/x\"\nrundir = \"/y\"\n");
  EXPECT_THAT(message, StartsWith(At(2)));
  EXPECT_THAT(message, HasSubstr("unknown field 'rundir'"));
}

TEST_F(ConfigTest, UnknownRestartFieldNamesFieldAndLine) {
  std::string message = LoadError(ValidProcess("jobs") + "[process.restart]\nbackoff_ms = 5\n");
  EXPECT_THAT(message, StartsWith(At(6)));
  EXPECT_THAT(message, HasSubstr("process 'jobs': unknown field 'restart.backoff_ms'"));
}

TEST_F(ConfigTest, WrongTypeNamesFieldAndType) {
  std::string message = LoadError(ValidProcess("jobs") + "count = \"two\"\n");
  EXPECT_EQ(message, At(5) + " process 'jobs': field 'count': must be an integer, got string");
}

TEST_F(ConfigTest, ProcessMustBeArrayOfTables) {
  std::string message = LoadError("[process]\nname = \"jobs\"\n");
  EXPECT_THAT(message, StartsWith(At(1)));
  EXPECT_THAT(message, HasSubstr("field 'process': must be an array of tables"));
}

TEST_F(ConfigTest, CountZeroIsAnError) {
  std::string message = LoadError(ValidProcess("jobs") + "count = 0\n");
  EXPECT_EQ(message, At(5) + " process 'jobs': field 'count': must be a positive integer, got 0");
}

TEST_F(ConfigTest, CountAboveLimitIsAnError) {
  std::string message = LoadError(ValidProcess("jobs") + "count = 10001\n");
  EXPECT_THAT(message, StartsWith(At(5)));
  EXPECT_THAT(message, HasSubstr("field 'count': must be at most 10000, got 10001"));
}

TEST_F(ConfigTest, CountOutsideIntIsAnError) {
  std::string message = LoadError(ValidProcess("jobs") + "count = 4294967297\n");
  EXPECT_THAT(message, StartsWith(At(5)));
  EXPECT_THAT(message, HasSubstr("field 'count': out of range, got 4294967297"));
}

TEST_F(ConfigTest, MissingUnitFileNamesResolvedPath) {
  std::string message =
      LoadError("[[process]]\nname = \"jobs\"\nclass = \"C\"\nunit = \"libgone.so\"\n");
  EXPECT_THAT(message, StartsWith(At(4)));
  EXPECT_THAT(message, HasSubstr(absl::StrCat("process 'jobs': field 'unit': unit file not found: ",
                                              (dir_ / "libgone.so").string())));
}

TEST_F(ConfigTest, DuplicateNameNamesSecondLine) {
  std::string message =
      LoadError(ValidProcess("jobs") + ValidProcess("web") + ValidProcess("jobs"));
  EXPECT_THAT(message, StartsWith(At(10)));
  EXPECT_THAT(message, HasSubstr("process 'jobs': field 'name': duplicate name"));
  EXPECT_THAT(message, HasSubstr("first used on line 2"));
}

TEST_F(ConfigTest, MissingClassNamesProcessTableLine) {
  std::string message =
      LoadError(ValidProcess("web") +
                absl::StrCat("\n[[process]]\nname = \"jobs\"\nunit = \"", unit_, "\"\n"));
  EXPECT_EQ(message, At(6) + " process 'jobs': field 'class': is required");
}

TEST_F(ConfigTest, MissingNameNamesProcessByIndex) {
  std::string message = LoadError("[[process]]\nclass = \"C\"\n");
  EXPECT_EQ(message, At(1) + " process #1: field 'name': is required");
}

TEST_F(ConfigTest, BadNameCharactersAreAnError) {
  std::string message = LoadError("[[process]]\nclass = \"C\"\nname = \"../jobs\"\n");
  EXPECT_THAT(message, StartsWith(At(3)));
  EXPECT_THAT(message, HasSubstr("field 'name': must contain only [A-Za-z0-9_-], got '../jobs'"));
}

TEST_F(ConfigTest, BackoffMaxBelowStartNamesItsLine) {
  std::string message = LoadError(
      ValidProcess("jobs") + "[process.restart]\nbackoff_start_ms = 500\nbackoff_max_ms = 100\n");
  EXPECT_THAT(message, StartsWith(At(7)));
  EXPECT_THAT(message, HasSubstr("field 'restart.backoff_max_ms': must be >="));
}

// A C++ registration without a file: the message names the registration, not a line.
ProcessConfig Registration(const std::string& name, const std::string& unit) {
  ProcessConfig p;
  p.name = name;
  p.unit = unit;
  p.class_name = "Worker";
  return p;
}

TEST_F(ConfigTest, ValidateConfigAcceptsValidRegistrations) {
  ServerConfig config;
  config.processes = {Registration("jobs", unit_), Registration("web", unit_)};
  EXPECT_TRUE(ValidateConfig(config).ok());
}

TEST_F(ConfigTest, ValidateConfigRejectsDuplicate) {
  ServerConfig config;
  config.processes = {Registration("jobs", unit_), Registration("web", unit_),
                      Registration("jobs", unit_)};
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              StartsWith("process 'jobs': field 'name': duplicate name"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("#1 and #3"));
}

TEST_F(ConfigTest, ValidateConfigRejectsBadCount) {
  ServerConfig config;
  config.processes = {Registration("jobs", unit_)};
  config.processes[0].count = 0;
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "process 'jobs': field 'count': must be a positive integer, got 0");
}

TEST_F(ConfigTest, ValidateConfigRejectsMissingUnitFile) {
  ServerConfig config;
  const std::string unit = (dir_ / "libgone.so").string();
  config.processes = {Registration("jobs", unit)};
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.message(),
            absl::StrCat("process 'jobs': field 'unit': unit file not found: ", unit));
}

TEST_F(ConfigTest, MergeConfigAppendsFileAfterHook) {
  ServerConfig hook;
  hook.run_dir = "/run/hook";
  hook.processes = {Registration("a", unit_), Registration("b", unit_)};
  ServerConfig file;
  file.run_dir = "/run/file";
  file.processes = {Registration("c", unit_)};
  MergeConfig(hook, std::move(file));
  ASSERT_EQ(hook.processes.size(), 3u);
  EXPECT_EQ(hook.processes[0].name, "a");
  EXPECT_EQ(hook.processes[1].name, "b");
  EXPECT_EQ(hook.processes[2].name, "c");
  EXPECT_EQ(hook.run_dir, "/run/file");
}

TEST_F(ConfigTest, MergeConfigKeepsRunDirWhenExtraHasNone) {
  ServerConfig hook;
  hook.run_dir = "/run/hook";
  MergeConfig(hook, ServerConfig{});
  EXPECT_EQ(hook.run_dir, "/run/hook");
  EXPECT_TRUE(hook.processes.empty());
}

}  // namespace
}  // namespace sprocket
