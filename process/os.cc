#include "process/os.h"

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace sprocket {
namespace {

class RealOsImpl final : public Os {
 public:
  // sprocket::Os
  absl::StatusOr<pid_t> Fork() override {
    const pid_t pid = ::fork();
    if (pid < 0) {
      return absl::ErrnoToStatus(errno, "fork");
    }
    return pid;
  }

  absl::Status Kill(pid_t pid, int signal) override {
    if (::kill(pid, signal) < 0) {
      return absl::ErrnoToStatus(errno, absl::StrFormat("kill(%d, %d)", pid, signal));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<UniqueFd> PidfdOpen(pid_t pid) override {
    // glibc 2.36's <sys/pidfd.h> lacks extern "C" guards, so call the syscall directly.
    UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!fd) {
      return absl::ErrnoToStatus(errno, absl::StrFormat("pidfd_open(%d)", pid));
    }
    return fd;
  }

  absl::StatusOr<ExitStatus> WaitPidfd(int pidfd) override {
    siginfo_t info{};
    int r;
    do {
      r = ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      // EAGAIN (Unavailable): the pidfd is non-blocking and the child is not reapable yet
      // (a traced child can signal exit before it can be waited for); wait again.
      return absl::ErrnoToStatus(errno, "waitid(P_PIDFD)");
    }
    ExitStatus status;
    status.signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
    status.code = info.si_status;
    return status;
  }

  absl::StatusOr<std::uint64_t> StartTime(pid_t pid) override {
    return ReadProcessStartTime(pid);
  }
};

}  // namespace

Os& RealOs() {
  static RealOsImpl* os = new RealOsImpl();
  return *os;
}

absl::StatusOr<std::uint64_t> ReadProcessStartTime(pid_t pid) {
  const std::string path = absl::StrFormat("/proc/%d/stat", pid);
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return absl::NotFoundError(absl::StrFormat("cannot read %s", path));
  }
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const std::size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 > line.size()) {
    return absl::DataLossError(absl::StrFormat("malformed %s", path));
  }
  std::vector<std::string> fields =
      absl::StrSplit(line.substr(close + 2), ' ', absl::SkipEmpty());
  // After ')' comes field 3 (state); field 22 (starttime) is index 19.
  std::uint64_t ticks = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &ticks)) {
    return absl::DataLossError(absl::StrFormat("no start time in %s", path));
  }
  return ticks;
}

std::string DescribeExit(const ExitStatus& status) {
  if (!status.signaled) {
    return absl::StrFormat("exit %d", status.code);
  }
  const char* abbrev = ::sigabbrev_np(status.code);
  return absl::StrFormat("signal %d (SIG%s)", status.code, abbrev ? abbrev : "?");
}

}  // namespace sprocket
