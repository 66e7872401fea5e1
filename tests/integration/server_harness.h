// File: tests/integration/server_harness.h
//
// Runs the real //server binary for integration tests: writes a TOML config into a fresh temp
// dir, forks + execs the server with its own run dir, captures its output to a log, and offers
// waits on the pid registry. The destructor SIGKILLs a server still running (PR_SET_PDEATHSIG
// then takes the manager and every child with it), so a failing test leaves nothing behind.
//
//   ServerUnderTest server;
//   ASSERT_TRUE(server.Start(R"([[process]] ...)").ok());
//   ASSERT_TRUE(server.WaitForState("jobs", 0, "running"));
//   EXPECT_EQ(server.Stop(), 0);
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "process/registry.h"

namespace sprocket::testing {

// An absolute path to a runfile ("sprocket/tests/integration/units/libversion_a.so").
std::string Runfile(const std::string& path);

// Polls `condition` every 5 ms until it holds or `timeout` passes.
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Exists and is not a zombie.
bool IsAlive(pid_t pid);

std::string ReadFileOrEmpty(const std::string& path);
void WriteFile(const std::string& path, const std::string& contents);
// Copies `from` to `to` through a temp file and rename(2), the way a deploy replaces a unit.
void ReplaceFile(const std::string& from, const std::string& to);

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv[0] with its arguments (as uid `uid` when >= 0) and collects its output.
CommandResult RunCommand(const std::vector<std::string>& argv, int uid = -1);

class ServerUnderTest {
 public:
  ServerUnderTest();
  ~ServerUnderTest();

  // Starts the server with `config_toml` (empty: no --config, the embedded default) and extra
  // flags. Returns once the master process exists.
  absl::Status Start(const std::string& config_toml, std::vector<std::string> flags = {});
  // Runs the server binary to completion (for configs that must be refused); returns its exit code.
  int RunToExit(const std::string& config_toml, std::vector<std::string> flags = {});

  // SIGTERM to the master; waits for it and returns its exit code (-1 on timeout/signal).
  int Stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits for the master to exit on its own; returns its exit code, or nullopt on timeout.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);

  std::vector<SlotRecord> Slots() const;
  std::optional<SlotRecord> Slot(const std::string& name, int index) const;
  // The pid in NAME.INDEX.pid, 0 if absent.
  pid_t PidFile(const std::string& name, int index) const;
  pid_t ManagerPid() const;
  // "127.0.0.1:PORT" the workers serve (from processes.json); "" before the manager wrote it.
  std::string HttpAddress() const;
  bool WaitForState(const std::string& name, int index, const std::string& state,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  pid_t master() const { return master_; }
  const std::string& dir() const { return dir_; }       // scratch dir for the test's files
  const std::string& run_dir() const { return run_dir_; }
  std::string config_path() const { return dir_ + "/sprocket.toml"; }
  std::string Log() const { return ReadFileOrEmpty(dir_ + "/server.log"); }

 private:
  pid_t Spawn(const std::string& config_toml, std::vector<std::string> flags);

  std::string dir_;
  std::string run_dir_;
  pid_t master_ = 0;
};

}  // namespace sprocket::testing
