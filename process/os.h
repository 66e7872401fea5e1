// File: process/os.h
//
// The system calls the manager's supervision logic makes, behind an interface (like Envoy's
// Api::OsSysCalls) so respawn and backoff decisions can be driven without real children.
// Errors come back as absl::Status naming the call that failed; nothing here logs.
//
//   Os& os = RealOs();
//   absl::StatusOr<pid_t> pid = os.Fork();
//
// Limits: RealOs() is the only implementation used outside tests.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "process/unique_fd.h"

namespace sprocket {

struct ExitStatus {
  // True when the process ended by a signal; then `code` is the signal number.
  bool signaled = false;
  int code = 0;
};

class Os {
 public:
  virtual ~Os() = default;
  // 0 in the child, the child's pid in the parent.
  virtual absl::StatusOr<pid_t> Fork() = 0;
  virtual absl::Status Kill(pid_t pid, int signal) = 0;
  // A pidfd: readable once the process exits; reaped with WaitPidfd.
  virtual absl::StatusOr<UniqueFd> PidfdOpen(pid_t pid) = 0;
  // Reaps the exited process behind `pidfd` (must be readable) and returns how it ended.
  // Unavailable (EAGAIN) when it cannot be reaped yet: watch the pidfd again.
  virtual absl::StatusOr<ExitStatus> WaitPidfd(int pidfd) = 0;
  // The process's start time in clock ticks since boot (/proc/PID/stat field 22), which with
  // the pid identifies a process even after the pid is reused.
  virtual absl::StatusOr<std::uint64_t> StartTime(pid_t pid) = 0;
};

// The real system calls; a process-wide singleton.
Os& RealOs();

// Reads field 22 of /proc/PID/stat; exposed for the registry and tests.
absl::StatusOr<std::uint64_t> ReadProcessStartTime(pid_t pid);

// "exit 3", "signal 9 (SIGKILL)".
std::string DescribeExit(const ExitStatus& status);

}  // namespace sprocket
