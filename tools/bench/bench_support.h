// File: tools/bench/bench_support.h
//
// What the benchmark drivers (bench_respawn, message/bench_message) have in common: the
// monotonic clock and deadlines, a temp dir on tmpfs, starting a child that cannot outlive the
// driver and stopping it by pid, /proc readers (a process's stat line, the machine's busy share),
// nearest-rank percentiles, and the Bazel runfiles the driver runs from. Keeping one copy means
// the two benchmarks measure, clean up and summarize the same way.
//
//   sprocket::bench::CatchInterrupts({SIGINT, SIGTERM});
//   sprocket::bench::TempDir tmp(sprocket::bench::TempParentOr("/tmp"), "bm", /*keep=*/false);
//   sprocket::bench::Child c = sprocket::bench::Spawn(
//       {argv, {}, tmp.path() / "out.log", tmp.path() / "out.log",
//        sprocket::bench::Detach::kSession});
//   ...
//   sprocket::bench::StopChild(c, 10000, [] { std::fprintf(stderr, "no clean stop\n"); });
//
// Limits: the driver process only, one thread. Errors are thrown as std::runtime_error, as the
// drivers do: a benchmark has nothing to recover, it stops what it started and exits.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace bazel::tools::cpp::runfiles {
class Runfiles;
}  // namespace bazel::tools::cpp::runfiles

namespace sprocket::bench {

// Environment variables for a child: {name, value}.
using EnvVars = std::vector<std::pair<std::string, std::string>>;

// ---------------------------------------------------------------------------------------------
// Flags.

// What an argument is to IntFlag().
enum class FlagMatch { kOther, kSet, kBad };

// If `arg` is --NAME=N with N a base-10 integer in [lo, hi]: stores N in `out` (kSet). kBad if it
// is --NAME= with anything else, so the driver can print its usage; kOther for other arguments.
FlagMatch IntFlag(const std::string& arg, const char* name, long lo, long hi, int& out);

// If `arg` is --NAME=TEXT: stores TEXT in `out` and returns true.
bool TextFlag(const std::string& arg, const char* name, std::string& out);

// ---------------------------------------------------------------------------------------------
// Clock, deadlines and interruption.

// CLOCK_MONOTONIC in ns: the clock the benchmark units timestamp with, so samples compare.
std::int64_t MonotonicNs();

// The CLOCK_MONOTONIC instant `ms` from now.
std::int64_t DeadlineAfterMs(std::int64_t ms);

// Whole ms left until `deadline_ns`, rounded up so that a poll() never wakes just before it.
std::int64_t MsUntil(std::int64_t deadline_ns);

void SleepMs(int ms);

// Makes each of `signals` only set the flag Interrupted() reads. Without SA_RESTART, so a
// blocking poll() returns EINTR and the driver gets to stop what it started before exiting.
void CatchInterrupts(std::initializer_list<int> signals);

// True once one of the signals given to CatchInterrupts() arrived.
bool Interrupted();

// ---------------------------------------------------------------------------------------------
// Files.

// "WHAT: strerror(errno)", for an exception right after a failed call.
std::string Errno(const std::string& what);

// Writes `text` to `path` (truncating); throws if it cannot.
void WriteFile(const std::filesystem::path& path, const std::string& text);

// All of `path`, or "" if it cannot be read.
std::string ReadFile(const std::filesystem::path& path);

// An error "WHO: WHY" followed by the last lines of `log`: a child's own words on why it failed
// are what one needs first.
std::runtime_error ErrorWithLog(const std::string& who, const std::string& why,
                                const std::filesystem::path& log);

// /dev/shm when it is a writable tmpfs, else `fallback`. A production run dir is on tmpfs
// (/run/sprocket under systemd's RuntimeDirectory=); on a disk filesystem the manager's
// rename-over-existing registry writes can start block I/O that production never pays.
std::string TempParentOr(const std::string& fallback);

// A fresh directory PARENT/PREFIX.XXXXXX, removed with everything in it on destruction unless
// `keep` (then its path goes to stderr, for a look at the logs).
class TempDir {
 public:
  TempDir(const std::string& parent, const std::string& prefix, bool keep);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool keep_;
};

// ---------------------------------------------------------------------------------------------
// Child processes.

// Where a child stands apart from the driver. A detached child does not get the terminal's
// Ctrl-C (the driver stops its children in order instead), so it is also made to die with the
// driver (PR_SET_PDEATHSIG, SIGTERM: a clean stop) in case the driver is killed outright.
enum class Detach {
  kNone,          // the driver's process group and session; lives on if the driver dies
  kProcessGroup,  // a process group of its own
  kSession,       // a session of its own: every process it starts can be found by session id
};

// What to start. stdin is /dev/null; `out` and `err` are truncated and may be the same file.
struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is the path of the executable
  EnvVars env;                    // set on top of the driver's environment
  std::filesystem::path out;
  std::filesystem::path err;
  Detach detach = Detach::kNone;
};

// A child we started: its pid and a pidfd on it (-1 if the kernel has none), to wait without
// polling. Closed and zeroed once the child is reaped through the functions below.
struct Child {
  pid_t pid = 0;
  int pidfd = -1;
};

// fork + exec of `spec`, with default signal handling and nothing but fds 0-2 open in the
// child. Throws if fork fails; a failed exec shows as exit 127 with the reason in `err`.
Child Spawn(const SpawnSpec& spec);

// Waits up to `timeout_ms` for `pid` (our child, with `pidfd`, or -1 to poll) to exit and
// reaps it. Returns its wait status (0 if it was already reaped), or nullopt on timeout.
std::optional<int> WaitExit(pid_t pid, int pidfd, int timeout_ms);

// If `child` has exited: reaps it, closes its pidfd, clears it and returns its wait status.
std::optional<int> ReapIfExited(Child& child);

// SIGTERM to `child`; after `timeout_ms`, `before_kill` (to say so) and SIGKILL. Reaps it,
// closes its pidfd and clears it. Returns the wait status, or nullopt if it took SIGKILL.
std::optional<int> StopChild(Child& child, int timeout_ms,
                             const std::function<void()>& before_kill);

// "exit N", "killed by SIGNAL" or "status N", for a message.
std::string DescribeStatus(int status);

// ---------------------------------------------------------------------------------------------
// /proc.

// The fields we use of a process's stat line (proc(5)).
struct ProcStat {
  pid_t pid = 0;
  char state = '?';
  pid_t session = 0;
  std::uint64_t ticks = 0;       // utime + stime + cutime + cstime
  std::uint64_t start_time = 0;  // clock ticks after boot: with the pid, names one process
};

// Parses the stat file at `path` (e.g. /proc/PID/stat, /proc/self/stat) of process `pid`.
// nullopt if it is gone.
std::optional<ProcStat> ReadStat(const std::string& path, pid_t pid);

// `pid`'s start time, or 0 if it is gone or a zombie: a recycled pid is never taken for ours.
std::uint64_t StartTime(pid_t pid);

// The machine's CPU time so far, from /proc/stat's "cpu" line, in clock ticks.
struct CpuTicks {
  std::uint64_t busy = 0;  // all but idle and iowait
  std::uint64_t total = 0;
};
CpuTicks MachineTicks();

// How busy the machine was between two MachineTicks(), in percent of all CPUs. Every sample is
// a chain of wake-ups across processes and CPUs, so other work on the machine shows in it.
double BusyPercent(const CpuTicks& from, const CpuTicks& to);

// The first non-empty "model name" of /proc/cpuinfo, or "".
std::string CpuModel();

// The 1, 5 and 15 minute load averages, from /proc/loadavg.
std::string LoadAverage();

// ---------------------------------------------------------------------------------------------
// Statistics.

// A summary of samples, in ms.
struct Stats {
  std::size_t n = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};

// Nearest-rank percentiles of samples in ms.
Stats SummarizeMs(std::vector<double> ms);

// Nearest-rank percentiles of samples in ns, reported in ms.
Stats SummarizeNs(const std::vector<std::int64_t>& ns);

// ---------------------------------------------------------------------------------------------
// Bazel runfiles.

// The driver's data dependencies, found in its Bazel runfiles.
class BenchRunfiles {
 public:
  // Throws outside Bazel's runfiles; `run_with` says how to run the driver instead.
  BenchRunfiles(const char* argv0, const std::string& run_with);
  ~BenchRunfiles();

  // The absolute path of sprocket/`path` (e.g. "server/server"); throws if it is missing.
  std::string Locate(const std::string& path) const;

  // RUNFILES_DIR and friends, absolute: a child (the server finds its bundled units through
  // them) may run from another working directory.
  EnvVars AbsoluteEnvVars() const;

 private:
  std::unique_ptr<bazel::tools::cpp::runfiles::Runfiles> runfiles_;
};

}  // namespace sprocket::bench
