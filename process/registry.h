// File: process/registry.h
//
// The pid registry in the runtime dir, for operators and scripts:
//   master.pid            the master's pid, flock'ed while it lives (RunDirLock)
//   manager.pid           the manager's pid
//   NAME.INDEX.pid        one per slot, so `kill -TERM $(cat run/testProcess.0.pid)` works
//   processes.json        every slot: kind, name, group, index, pid, start time, start wall
//                         time, state, restarts, last exit, reason, unit — replaced atomically
// Files left by a crashed run are detected when the lock is taken and removed, never trusted.
//
//   absl::StatusOr<RunDirLock> lock = RunDirLock::Acquire("/run/sprocket");  // master
//   Registry registry("/run/sprocket");                                     // manager
//   registry.Write(supervisor.Snapshot());
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "process/unique_fd.h"

namespace sprocket {

inline constexpr char kRegistryJson[] = "processes.json";
inline constexpr char kMasterPidFile[] = "master.pid";
inline constexpr char kManagerPidFile[] = "manager.pid";

// One slot as the registry shows it.
struct SlotRecord {
  std::string kind;  // "process" (custom process) or "worker"
  std::string name;
  std::string group;
  int index = 0;
  pid_t pid = 0;  // 0 while no process runs for the slot
  // Clock ticks since boot (/proc/PID/stat field 22): with pid, identifies the process.
  std::uint64_t start_time = 0;
  // When the process started, in milliseconds since the Unix epoch (0 while none runs).
  std::int64_t started_at_ms = 0;
  std::string state;  // starting, running, backoff, stopping, stopped, failed
  int restarts = 0;
  std::string last_exit;  // "exit 0", "signal 9 (SIGKILL)", "" before the first exit
  std::string reason;     // why it is not running (a unit load error...), or ""
  std::string unit;
};

nlohmann::json ToJson(const SlotRecord& record);
absl::StatusOr<SlotRecord> SlotRecordFromJson(const nlohmann::json& json);

// Where the registry lives when no --run_dir is given: $RUNTIME_DIRECTORY (systemd), else
// /run/sprocket as root, else $XDG_RUNTIME_DIR/sprocket, else /tmp/sprocket-UID.
std::string DefaultRunDir();

// Reads processes.json (for tools and tests).
absl::StatusOr<std::vector<SlotRecord>> ReadRegistry(const std::string& dir);
// The "listen" addresses in processes.json.
absl::StatusOr<std::vector<std::string>> ReadRegistryListen(const std::string& dir);

// Writes `contents` to `path` via a temp file and rename, so readers never see half a file.
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents);

// Removes every registry file in `dir` but master.pid (every *.pid, processes.json and temp
// files): what a crashed run leaves, or what a stopping master clears. Returns how many.
int RemoveRegistryFiles(const std::string& dir);

// Maintains the per-slot files and processes.json. Manager process only.
class Registry {
 public:
  explicit Registry(std::string dir) : dir_(std::move(dir)) {}
  // The HTTP addresses the server listens on ("127.0.0.1:9501"), shown in processes.json so a
  // client of a server started on port 0 can find it.
  void set_listen(std::vector<std::string> listen) { listen_ = std::move(listen); }
  // Rewrites processes.json and the pid files whose pid changed.
  absl::Status Write(const std::vector<SlotRecord>& slots);
  // Removes every slot file and processes.json this registry wrote.
  void RemoveSlotFiles();
  const std::string& dir() const { return dir_; }

 private:
  absl::Status WritePidFile(const SlotRecord& record);

  std::string dir_;
  std::vector<std::string> listen_;
  std::map<std::string, pid_t> pid_files_;  // file name -> pid written
};

// The master's exclusive hold on a runtime dir: master.pid, flock'ed for the master's life.
class RunDirLock {
 public:
  // Creates the dir if needed and takes the lock. A dir held by a live master is an error naming
  // its pid; files a dead run left behind are removed (and counted in stale_files()).
  static absl::StatusOr<RunDirLock> Acquire(const std::string& dir);
  RunDirLock(RunDirLock&&) = default;
  // Assigning over a held lock would drop it without removing its master.pid.
  RunDirLock& operator=(RunDirLock&&) = delete;
  ~RunDirLock();

  const std::string& dir() const { return dir_; }
  int stale_files() const { return stale_files_; }
  pid_t stale_pid() const { return stale_pid_; }
  int fd() const { return fd_.get(); }

 private:
  RunDirLock(std::string dir, UniqueFd fd) : dir_(std::move(dir)), fd_(std::move(fd)) {}
  std::string dir_;
  UniqueFd fd_;
  int stale_files_ = 0;
  pid_t stale_pid_ = 0;
};

}  // namespace sprocket
