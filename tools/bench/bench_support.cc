#include "tools/bench/bench_support.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>
#include <sstream>
#include <system_error>
#include <thread>

#include "tools/cpp/runfiles/runfiles.h"

namespace sprocket::bench {
namespace {

volatile sig_atomic_t g_interrupted = 0;

void OnInterrupt(int) { g_interrupted = 1; }

// The last `lines` lines of `path`, indented for an error message.
std::string Tail(const std::filesystem::path& path, std::size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) {
    all.push_back(line);
  }
  std::string out;
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    out += "    " + all[i] + "\n";
  }
  return out;
}

// In the child, before anything else: a SIGTERM that comes before exec (PR_SET_PDEATHSIG, or the
// driver stopping it) must end the child, not set the driver's flag in it; and an ignored
// SIGPIPE would otherwise survive exec.
void ResetSignals() {
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP}) {
    ::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// In the child: leaves the driver's group or session as `detach` says. Exits if the driver is
// already gone, since PR_SET_PDEATHSIG would then never fire.
void DetachFrom(pid_t parent, Detach detach) {
  if (detach == Detach::kNone) {
    return;
  }
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) {
    ::_exit(1);
  }
  if (detach == Detach::kSession) {
    ::setsid();
  } else {
    ::setpgid(0, 0);
  }
}

// In the child: fds 0-2 from /dev/null, `out` and `err`, and no other fd of the driver's.
void RedirectStdio(const std::filesystem::path& out, const std::filesystem::path& err) {
  const int in = ::open("/dev/null", O_RDONLY);
  const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int e = out == err ? o : ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || o < 0 || e < 0) {
    ::_exit(127);
  }
  ::dup2(in, 0);
  ::dup2(o, 1);
  ::dup2(e, 2);
  ::close_range(3, ~0U, 0);
}

[[noreturn]] void ExecChild(const SpawnSpec& spec, char* const* args, pid_t parent) {
  ResetSignals();
  DetachFrom(parent, spec.detach);
  RedirectStdio(spec.out, spec.err);
  for (const auto& [name, value] : spec.env) {
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ::execv(args[0], args);
  std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
  ::_exit(127);
}

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Samples divided by `per_ms`, summarized. Dividing each picked sample (not the sorted copy)
// keeps the figures exactly what each driver printed before they shared this.
Stats Summarize(std::vector<double> v, double per_ms) {
  Stats s;
  if (v.empty()) {
    return s;
  }
  std::sort(v.begin(), v.end());
  auto rank = [&](double q) {
    const std::size_t r = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::clamp<std::size_t>(r, 1, v.size()) - 1] / per_ms;
  };
  s.n = v.size();
  s.min = v.front() / per_ms;
  s.p50 = rank(0.50);
  s.p90 = rank(0.90);
  s.p99 = rank(0.99);
  s.p999 = rank(0.999);
  s.max = v.back() / per_ms;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()) / per_ms;
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Flags.

FlagMatch IntFlag(const std::string& arg, const char* name, long lo, long hi, int& out) {
  std::string text;
  if (!TextFlag(arg, name, text)) {
    return FlagMatch::kOther;
  }
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < lo || v > hi) {
    return FlagMatch::kBad;
  }
  out = static_cast<int>(v);
  return FlagMatch::kSet;
}

bool TextFlag(const std::string& arg, const char* name, std::string& out) {
  const std::string prefix = std::string("--") + name + "=";
  if (arg.rfind(prefix, 0) != 0) {
    return false;
  }
  out = arg.substr(prefix.size());
  return true;
}

// ---------------------------------------------------------------------------------------------
// Clock, deadlines and interruption.

std::int64_t MonotonicNs() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1000000000LL + now.tv_nsec;
}

std::int64_t DeadlineAfterMs(std::int64_t ms) { return MonotonicNs() + ms * 1000000LL; }

std::int64_t MsUntil(std::int64_t deadline_ns) {
  return (deadline_ns - MonotonicNs() + 999999) / 1000000;
}

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

void CatchInterrupts(std::initializer_list<int> signals) {
  struct sigaction interrupt {};
  interrupt.sa_handler = OnInterrupt;
  sigemptyset(&interrupt.sa_mask);
  for (int sig : signals) {
    ::sigaction(sig, &interrupt, nullptr);
  }
}

bool Interrupted() { return g_interrupted != 0; }

// ---------------------------------------------------------------------------------------------
// Files.

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out.flush()) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::runtime_error ErrorWithLog(const std::string& who, const std::string& why,
                                const std::filesystem::path& log) {
  return std::runtime_error(who + ": " + why + "\n  last lines of " + log.string() + ":\n" +
                            Tail(log, 15));
}

std::string TempParentOr(const std::string& fallback) {
  struct statfs fs_info {};
  if (::statfs("/dev/shm", &fs_info) == 0 && fs_info.f_type == TMPFS_MAGIC &&
      ::access("/dev/shm", W_OK) == 0) {
    return "/dev/shm";
  }
  return fallback;
}

TempDir::TempDir(const std::string& parent, const std::string& prefix, bool keep) : keep_(keep) {
  std::string tmpl = parent + "/" + prefix + ".XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error(Errno("mkdtemp " + tmpl));
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (keep_) {
    std::fprintf(stderr, "kept %s\n", path_.c_str());
  } else {
    std::filesystem::remove_all(path_, ec);
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes.

Child Spawn(const SpawnSpec& spec) {
  std::vector<char*> args;
  for (const std::string& a : spec.argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw std::runtime_error(Errno("fork"));
  }
  if (pid == 0) {
    ExecChild(spec, args.data(), parent);
  }
  return {pid, PidfdOpen(pid)};
}

std::optional<int> WaitExit(pid_t pid, int pidfd, int timeout_ms) {
  const std::int64_t deadline = DeadlineAfterMs(timeout_ms);
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      return status;
    }
    if (r < 0 && errno == ECHILD) {
      return 0;
    }
    const std::int64_t left_ms = MsUntil(deadline);
    if (left_ms <= 0) {
      return std::nullopt;
    }
    pollfd p{pidfd, POLLIN, 0};
    if (pidfd >= 0) {
      (void)::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left_ms, 100)));
    } else {
      SleepMs(5);
    }
  }
}

std::optional<int> ReapIfExited(Child& child) {
  int status = 0;
  if (child.pid <= 0 || ::waitpid(child.pid, &status, WNOHANG) != child.pid) {
    return std::nullopt;
  }
  ::close(child.pidfd);
  child = {};
  return status;
}

std::optional<int> StopChild(Child& child, int timeout_ms,
                             const std::function<void()>& before_kill) {
  ::kill(child.pid, SIGTERM);
  std::optional<int> status = WaitExit(child.pid, child.pidfd, timeout_ms);
  if (!status) {
    before_kill();
    ::kill(child.pid, SIGKILL);
    WaitExit(child.pid, child.pidfd, 5000);
  }
  ::close(child.pidfd);
  child = {};
  return status;
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) {
    return "exit " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return std::string("killed by ") + strsignal(WTERMSIG(status));
  }
  return "status " + std::to_string(status);
}

// ---------------------------------------------------------------------------------------------
// /proc.

std::optional<ProcStat> ReadStat(const std::string& path, pid_t pid) {
  const std::string stat = ReadFile(path);
  // The command name (field 2) may hold spaces and parentheses: fields 3 on follow the last ')'.
  const std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) {
    return std::nullopt;
  }
  std::istringstream fields(stat.substr(paren + 2));
  ProcStat s;
  s.pid = pid;
  std::string f;
  for (int i = 3; i <= 22 && fields >> f; ++i) {
    if (i == 3) {
      s.state = f[0];
    } else if (i == 6) {
      s.session = static_cast<pid_t>(std::strtol(f.c_str(), nullptr, 10));
    } else if (i >= 14 && i <= 17) {
      s.ticks += std::strtoull(f.c_str(), nullptr, 10);
    } else if (i == 22) {
      s.start_time = std::strtoull(f.c_str(), nullptr, 10);
    }
  }
  return s;
}

std::uint64_t StartTime(pid_t pid) {
  const std::optional<ProcStat> s = ReadStat("/proc/" + std::to_string(pid) + "/stat", pid);
  if (!s || s->state == 'Z' || s->state == 'X') {
    return 0;
  }
  return s->start_time;
}

CpuTicks MachineTicks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;
  CpuTicks t;
  std::uint64_t value = 0;
  for (int i = 0; i < 8 && in >> value; ++i) {
    t.total += value;
    t.busy += (i == 3 || i == 4) ? 0 : value;  // idle and iowait are not busy
  }
  return t;
}

double BusyPercent(const CpuTicks& from, const CpuTicks& to) {
  const double total = static_cast<double>(to.total - from.total);
  return total > 0 ? 100.0 * static_cast<double>(to.busy - from.busy) / total : 0.0;
}

std::string CpuModel() {
  std::string cpu;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; cpu.empty() && std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
    }
  }
  return cpu;
}

std::string LoadAverage() {
  std::string load;
  std::getline(std::ifstream("/proc/loadavg") >> std::ws, load);
  return load.substr(0, load.find(' ', load.find(' ', load.find(' ') + 1) + 1));
}

// ---------------------------------------------------------------------------------------------
// Statistics.

Stats SummarizeMs(std::vector<double> ms) { return Summarize(std::move(ms), 1.0); }

Stats SummarizeNs(const std::vector<std::int64_t>& ns) {
  return Summarize(std::vector<double>(ns.begin(), ns.end()), 1e6);
}

// ---------------------------------------------------------------------------------------------
// Bazel runfiles.

BenchRunfiles::BenchRunfiles(const char* argv0, const std::string& run_with) {
  std::string error;
  runfiles_.reset(bazel::tools::cpp::runfiles::Runfiles::Create(argv0, &error));
  if (runfiles_ == nullptr) {
    throw std::runtime_error("no Bazel runfiles (" + error + "): run it with " + run_with);
  }
}

BenchRunfiles::~BenchRunfiles() = default;

std::string BenchRunfiles::Locate(const std::string& path) const {
  const std::string where = runfiles_->Rlocation("sprocket/" + path);
  if (where.empty() || ::access(where.c_str(), R_OK) != 0) {
    throw std::runtime_error("missing runfile sprocket/" + path);
  }
  return std::filesystem::absolute(where).string();
}

EnvVars BenchRunfiles::AbsoluteEnvVars() const {
  EnvVars env = runfiles_->EnvVars();
  for (auto& [name, value] : env) {
    if (!value.empty()) {
      value = std::filesystem::absolute(value).string();
    }
  }
  return env;
}

}  // namespace sprocket::bench
