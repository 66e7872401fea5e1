// bench_message: the control API's cost, measured against its own floor, in one run.
//
//   1. Send → OnPipeReadable. One sprocket server with one BenchSink process
//      (bench_message_unit.cc). One blocking ControlClient on RUN_DIR/control.sock calls
//      Ping() (a no-op method: the pure D-Bus cost) and Send("sink", "m SEQ SENT_NS") the same
//      number of times, in alternating rounds (Ping, Send, Send, Ping, ...) so that drift in the
//      machine's load hits both alike. From the client: calls/s and the round-trip latency of each
//      (reply received). From the process: BenchSink timestamps every message as its
//      OnPipeReadable begins, so SENT_NS → that instant is the end-to-end latency. Prints the
//      ratio Send calls/s ÷ Ping calls/s, and the CPU time per call of each process on the path
//      (client, master, manager, the process) from /proc/PID/task/*/schedstat. Then --paced
//      Sends at a steady --paced_rate, for the latency when calls are not back to back.
//   2. ps with N slots (default 1,000). A second server with one registration of N BenchIdle
//      processes; once ListProcesses shows all N running, it times, interleaved: ListProcesses on
//      one connection (client library), connect + ListProcesses, and the real
//      `sprocketctl --run_dir=DIR ps` end to end (fork, exec, connect, call, print to a file,
//      exit), with Ping on the same connection as the floor.
//
// Goals (from the issue): Send ≥ 0.8× the no-op floor in calls/s; Send → OnPipeReadable
// p99 ≤ 2 ms; `ps` with 1,000 slots ≤ 100 ms (judged on sprocketctl ps's p99).
//
//   tools/bench_message [--calls=20000] [--warmup=2000] [--rounds=4] [--paced=5000]
//                       [--paced_rate=1000] [--slots=1000] [--ps_runs=50]
//                       [--only=message|--only=ps] [--tmp=DIR] [--keep_tmp] [--check]
//
// Every server runs in its own session (setsid) and dies with the driver (PR_SET_PDEATHSIG);
// each is stopped by pid (SIGTERM to its master, SIGKILL to whatever of its session is left after
// the timeout), and the temp dir is removed. With --session_file=PATH the driver appends each
// master's pid (= its session id) to PATH, for the wrapper's own check. Every wait has a timeout,
// and the whole run stops after --max_seconds.
#include <linux/magic.h>
#include <signal.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "systemd/control_client.h"
#include "tools/bench/bench_support.h"

namespace sprocket::bench {
namespace {

namespace fs = std::filesystem;

// Above this share of the CPUs used by processes other than ours during a measurement, the
// figures are noisy (the machine has few CPUs and every call is a chain of wake-ups).
constexpr double kNoisyOthersPercent = 10.0;

struct Options {
  int calls = 20000;
  int warmup = 2000;
  int rounds = 4;
  int slots = 1000;
  int ps_runs = 50;
  int paced = 5000;        // paced Sends after the back-to-back ones (0: none)
  int paced_rate = 1000;   // per second
  int start_timeout_s = 90;
  int max_seconds = 170;
  std::string tmp;
  std::string session_file;
  bool run_message = true;
  bool run_ps = true;
  bool keep_tmp = false;
  bool check = false;
};

[[noreturn]] void Usage(const std::string& bad) {
  std::fprintf(stderr,
               "bench_message: bad argument '%s'\n"
               "usage: bench_message [--calls=N] [--warmup=N] [--rounds=N] [--slots=N]\n"
               "                     [--ps_runs=N] [--start_timeout_s=S] [--max_seconds=S]\n"
               "                     [--tmp=DIR] [--session_file=PATH] [--keep_tmp]\n"
               "                     [--paced=N] [--paced_rate=PER_S] [--only=message|--only=ps]\n"
               "                     [--check (exit 3 if a goal is missed)]\n",
               bad.c_str());
  std::exit(2);
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto number = [&](const char* name, int& out, long lo, long hi) {
      const FlagMatch m = IntFlag(a, name, lo, hi, out);
      if (m == FlagMatch::kBad) {
        Usage(a);
      }
      return m == FlagMatch::kSet;
    };
    auto text = [&](const char* name, std::string& out) { return TextFlag(a, name, out); };
    if (number("calls", o.calls, 100, 10000000) || number("warmup", o.warmup, 0, 1000000) ||
        number("rounds", o.rounds, 1, 1000) || number("slots", o.slots, 1, 10000) ||
        number("ps_runs", o.ps_runs, 1, 100000) || number("paced", o.paced, 0, 1000000) ||
        number("paced_rate", o.paced_rate, 1, 1000000) ||
        number("start_timeout_s", o.start_timeout_s, 1, 3600) ||
        number("max_seconds", o.max_seconds, 10, 36000) || text("tmp", o.tmp) ||
        text("session_file", o.session_file)) {
      continue;
    }
    if (a == "--only=message" || a == "--only=ps") {
      o.run_message = a == "--only=message";
      o.run_ps = a == "--only=ps";
    } else if (a == "--keep_tmp") {
      o.keep_tmp = true;
    } else if (a == "--check") {
      o.check = true;
    } else {
      Usage(a);
    }
  }
  if (o.rounds > o.calls) {
    Usage("--rounds greater than --calls");
  }
  return o;
}

// The run's overall bound: every loop checks it, with Ctrl-C / SIGTERM.
std::int64_t g_run_deadline_ns = 0;

void CheckGoOn() {
  if (Interrupted()) {
    throw std::runtime_error("interrupted");
  }
  if (g_run_deadline_ns != 0 && MonotonicNs() > g_run_deadline_ns) {
    throw std::runtime_error("the run exceeded --max_seconds; stopping");
  }
}

// ---------------------------------------------------------------------------------------------
// /proc: sessions and CPU time.

// Every live (not zombie) process in session `sid`.
std::vector<ProcStat> SessionMembers(pid_t sid) {
  std::vector<ProcStat> out;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const pid_t pid = static_cast<pid_t>(std::strtol(name.c_str(), nullptr, 10));
    std::optional<ProcStat> s = ReadStat("/proc/" + name + "/stat", pid);
    if (s && s->session == sid && s->state != 'Z' && s->state != 'X') {
      out.push_back(*s);
    }
  }
  return out;
}

std::uint64_t SessionTicks(pid_t sid) {
  std::uint64_t t = 0;
  for (const ProcStat& s : SessionMembers(sid)) {
    t += s.ticks;
  }
  return t;
}

// CPU use of processes that are not ours between two snapshots, in percent of all CPUs.
struct CpuSnapshot {
  std::uint64_t busy = 0, total = 0, ours = 0;
};

// Scheduler time of every thread of `pid`, from /proc/PID/task/*/schedstat: ns on a CPU, ns
// runnable but waiting for one, and how many times it got a CPU. Zeros when the process is gone.
struct SchedTime {
  std::int64_t run_ns = 0, wait_ns = 0, slices = 0;  // slices: times it got a CPU (wake-ups)
};

SchedTime Sched(pid_t pid) {
  SchedTime t;
  if (pid <= 0) {
    return t;
  }
  std::error_code ec;
  for (const fs::directory_entry& e :
       fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(e.path() / "schedstat");
    long long run = 0, wait = 0, slices = 0;
    if (in >> run >> wait >> slices) {
      t.run_ns += run;
      t.wait_ns += wait;
      t.slices += slices;
    }
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Files, temp dir, child processes.

struct Files {
  std::string server;
  std::string unit;
  std::string sprocketctl;
  EnvVars runfiles_env;
};

Files FindFiles(const char* argv0) {
  const BenchRunfiles runfiles(argv0, "tools/bench_message");
  Files f;
  f.server = runfiles.Locate("server/server");
  f.unit = runfiles.Locate("tools/bench/message/libbench_message_unit.so");
  f.sprocketctl = runfiles.Locate("tools/sprocketctl");
  f.runfiles_env = runfiles.AbsoluteEnvVars();
  return f;
}

// Where the temp dir goes: --tmp, else tmpfs when there is one (see TempParentOr), else /tmp.
// Either way the path is short: the control socket's path must fit in sun_path (108 bytes).
std::string TempParent(const Options& o) { return o.tmp.empty() ? TempParentOr("/tmp") : o.tmp; }

// ---------------------------------------------------------------------------------------------
// A sprocket server under test.

class Server {
 public:
  Server(std::string label, const Files& files, fs::path dir, std::string session_file)
      : label_(std::move(label)),
        files_(files),
        dir_(std::move(dir)),
        session_file_(std::move(session_file)) {
    fs::create_directories(dir_ / "run");
  }
  ~Server() {
    try {
      Stop(10000, /*quiet=*/true);
    } catch (...) {
    }
  }

  const fs::path run_dir() const { return dir_ / "run"; }
  std::string socket() const { return (run_dir() / "control.sock").string(); }
  pid_t pid() const { return child_.pid; }
  fs::path log() const { return dir_ / "server.log"; }

  void Start(const std::string& toml) {
    const fs::path config = dir_ / "bench.toml";
    WriteFile(config, toml);
    // A session of its own: Stop() finds the manager and the processes by the session id.
    const std::vector<std::string> argv = {files_.server, "--config=" + config.string(),
                                           "--run_dir=" + run_dir().string(),
                                           "--listen=127.0.0.1:0", "--system_bus=false"};
    child_ = Spawn({argv, files_.runfiles_env, log(), log(), Detach::kSession});
    if (!session_file_.empty()) {
      std::ofstream(session_file_, std::ios::app) << child_.pid << "\n";
    }
  }

  // Connects to the control socket once the master serves it.
  std::unique_ptr<ControlClient> Connect(int timeout_ms) {
    const std::int64_t deadline = DeadlineAfterMs(timeout_ms);
    std::string last;
    for (;;) {
      CheckGoOn();
      CheckAlive();
      if (fs::exists(socket())) {
        absl::StatusOr<std::unique_ptr<ControlClient>> c = ControlClient::ConnectPrivate(socket());
        if (c.ok()) {
          return *std::move(c);
        }
        last = std::string(c.status().message());
      }
      if (MonotonicNs() > deadline) {
        Fail("no control socket to connect to within " + std::to_string(timeout_ms) + " ms" +
             (last.empty() ? "" : " (" + last + ")"));
      }
      SleepMs(20);
    }
  }

  // Polls ListProcesses until `expect` custom processes are running. Returns the rows.
  std::vector<ProcessRow> WaitRunning(ControlClient& client, int expect, int timeout_ms,
                                      int poll_ms) {
    const std::int64_t start = MonotonicNs();
    polls_ = 0;
    slowest_poll_ns_ = 0;
    const std::int64_t deadline = start + timeout_ms * 1000000LL;
    std::int64_t next_note = start + 5000000000LL;
    int running = 0;
    for (;;) {
      CheckGoOn();
      CheckAlive();
      const std::int64_t call_start = MonotonicNs();
      absl::StatusOr<std::vector<ProcessRow>> rows = client.ListProcesses();
      ++polls_;
      slowest_poll_ns_ = std::max(slowest_poll_ns_, MonotonicNs() - call_start);
      if (!rows.ok()) {
        Fail("ListProcesses: " + std::string(rows.status().message()));
      }
      running = 0;
      std::map<std::string, int> states;
      for (const ProcessRow& r : *rows) {
        if (r.kind == "process") {
          ++states[r.state];
          running += r.state == "running" ? 1 : 0;
        }
      }
      if (running >= expect) {
        return *std::move(rows);
      }
      const std::int64_t now = MonotonicNs();
      if (now > deadline) {
        std::string s;
        for (const auto& [state, n] : states) {
          s += " " + state + "=" + std::to_string(n);
        }
        Fail(std::to_string(running) + " of " + std::to_string(expect) +
             " processes running after " + std::to_string(timeout_ms) + " ms (states:" + s + ")");
      }
      if (now > next_note) {
        std::fprintf(stderr, "  %s: %d of %d processes running after %.0f s\n", label_.c_str(),
                     running, expect, (now - start) / 1e9);
        next_note += 5000000000LL;
      }
      SleepMs(poll_ms);
    }
  }

  // The manager's pid, from the registry.
  pid_t ManagerPid() const {
    std::ifstream in(run_dir() / "manager.pid");
    long pid = 0;
    in >> pid;
    return static_cast<pid_t>(pid);
  }

  // SIGTERM to the master; after `timeout_ms`, SIGKILL to it and to whatever is left of its
  // session. Prints how it went unless `quiet`.
  void Stop(int timeout_ms, bool quiet = false) {
    if (child_.pid <= 0) {
      return;
    }
    const pid_t pid = child_.pid;
    const std::int64_t t0 = MonotonicNs();
    const std::optional<int> status = StopChild(child_, timeout_ms, [&] {
      std::fprintf(stderr, "%s: master %d did not stop within %d ms of SIGTERM; SIGKILL\n",
                   label_.c_str(), static_cast<int>(pid), timeout_ms);
    });
    const std::string how = status ? DescribeStatus(*status) : "SIGKILLed after the timeout";
    // The manager and the processes die with the master (PR_SET_PDEATHSIG); give them a moment.
    std::vector<ProcStat> left;
    for (int i = 0; i < 250; ++i) {
      left = SessionMembers(pid);
      if (left.empty()) {
        break;
      }
      SleepMs(20);
    }
    for (const ProcStat& p : left) {
      ::kill(p.pid, SIGKILL);
    }
    if (!left.empty()) {
      std::fprintf(stderr, "%s: %zu process(es) of session %d outlived the master; SIGKILLed\n",
                   label_.c_str(), left.size(), static_cast<int>(pid));
      SleepMs(200);
      left = SessionMembers(pid);
    }
    if (!quiet) {
      std::printf("  stopped %s (master %d) in %.0f ms: %s; %s\n", label_.c_str(),
                  static_cast<int>(pid), (MonotonicNs() - t0) / 1e6, how.c_str(),
                  left.empty() ? "nothing left in its session"
                               : (std::to_string(left.size()) + " process(es) LEFT").c_str());
      if (how != "exit 0") {
        // Not a clean stop: show what the server said about it.
        std::ifstream in(log());
        int shown = 0;
        for (std::string line; shown < 5 && std::getline(in, line);) {
          if (!line.empty() && (line[0] == 'E' || line[0] == 'F' || line[0] == 'W')) {
            std::printf("    server log: %s\n", line.c_str());
            ++shown;
          }
        }
      }
    }
    if (!left.empty()) {
      throw std::runtime_error(label_ + ": processes of session " + std::to_string(pid) +
                               " survived SIGKILL");
    }
  }

  [[noreturn]] void Fail(const std::string& why) const { throw ErrorWithLog(label_, why, log()); }

  // ListProcesses calls made by the last WaitRunning, and the slowest of them.
  int polls() const { return polls_; }
  double slowest_poll_ms() const { return slowest_poll_ns_ / 1e6; }

 private:
  void CheckAlive() {
    if (const std::optional<int> status = ReapIfExited(child_)) {
      Fail("the server exited (" + DescribeStatus(*status) + ")");
    }
  }

  std::string label_;
  const Files& files_;
  fs::path dir_;
  std::string session_file_;
  Child child_;
  int polls_ = 0;
  std::int64_t slowest_poll_ns_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Printing.

std::string Thousands(double v) {
  std::string digits = std::to_string(static_cast<long long>(std::llround(v)));
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) {
      out += ',';
    }
    out += digits[i];
  }
  return out;
}

const char* Met(bool ok) { return ok ? "met" : "NOT met"; }

// ---------------------------------------------------------------------------------------------
// CPU accounting of a measurement: the share of the machine others used, and per-process
// scheduler time (ns on a CPU, ns runnable-but-waiting) of the processes on the call path.

class CpuWatch {
 public:
  explicit CpuWatch(std::vector<pid_t> sessions) : sessions_(std::move(sessions)) {}
  CpuSnapshot Take() const {
    CpuSnapshot s;
    const CpuTicks machine = MachineTicks();
    s.busy = machine.busy;
    s.total = machine.total;
    s.ours = ReadStat("/proc/self/stat", ::getpid()).value_or(ProcStat{}).ticks;
    for (pid_t sid : sessions_) {
      s.ours += SessionTicks(sid);
    }
    return s;
  }
  static double OthersPercent(const CpuSnapshot& a, const CpuSnapshot& b) {
    const double total = static_cast<double>(b.total - a.total);
    double others = static_cast<double>(b.busy - a.busy) - static_cast<double>(b.ours - a.ours);
    others = std::max(others, 0.0);
    return total > 0 ? 100.0 * others / total : 0.0;
  }

 private:
  std::vector<pid_t> sessions_;
};

// The processes on the call path, and their scheduler time summed per kind of call.
struct PathPids {
  pid_t client = 0, master = 0, manager = 0, process = 0;
};

struct PathTime {
  SchedTime client, master, manager, process;
};

PathTime ReadPath(const PathPids& p) {
  return {Sched(p.client), Sched(p.master), Sched(p.manager), Sched(p.process)};
}

void AddDelta(PathTime& sum, const PathTime& a, const PathTime& b) {
  auto add = [](SchedTime& s, const SchedTime& x, const SchedTime& y) {
    s.run_ns += y.run_ns - x.run_ns;
    s.wait_ns += y.wait_ns - x.wait_ns;
    s.slices += y.slices - x.slices;
  };
  add(sum.client, a.client, b.client);
  add(sum.master, a.master, b.master);
  add(sum.manager, a.manager, b.manager);
  add(sum.process, a.process, b.process);
}

// ---------------------------------------------------------------------------------------------
// 1. Send → OnPipeReadable beside Ping.

struct Calls {
  std::vector<std::int64_t> latency_ns;
  std::int64_t elapsed_ns = 0;
  PathTime cpu;
};

struct MessageResult {
  Calls ping, send;
  std::vector<std::int64_t> e2e_ns;           // SENT → OnPipeReadable began
  std::int64_t before_reply = 0;              // messages that reached OnPipeReadable first
  std::vector<std::int64_t> reply_to_arrival;  // arrival − reply (when the reply came first)
  // Paced: Sends spaced 1/paced_rate apart, after the back-to-back rounds.
  std::vector<std::int64_t> paced_rtt_ns, paced_e2e_ns;
  int paced = 0, paced_rate = 0;
  std::uint64_t wakeups = 0, messages = 0;
  double others_percent = 0;
  int calls = 0, warmup = 0, rounds = 0;
};

void MustOk(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    throw std::runtime_error(std::string(what) + ": " + std::string(s.message()));
  }
}

void DoPings(ControlClient& c, int n, Calls* out) {
  const std::int64_t start = MonotonicNs();
  for (int i = 0; i < n; ++i) {
    if ((i & 255) == 0) {
      CheckGoOn();
    }
    const std::int64_t t0 = MonotonicNs();
    const absl::Status s = c.Ping();
    const std::int64_t t1 = MonotonicNs();
    MustOk(s, "Ping");
    if (out != nullptr) {
      out->latency_ns.push_back(t1 - t0);
    }
  }
  if (out != nullptr) {
    out->elapsed_ns += MonotonicNs() - start;
  }
}

// Sends "KIND SEQ SENT_NS" for SEQ in [first, first + n); records the reply time of each.
void DoSends(ControlClient& c, char kind, int first, int n, Calls* out,
             std::vector<std::int64_t>* reply_at) {
  const std::int64_t start = MonotonicNs();
  char message[64];
  for (int seq = first; seq < first + n; ++seq) {
    if ((seq & 255) == 0) {
      CheckGoOn();
    }
    const std::int64_t t0 = MonotonicNs();
    std::snprintf(message, sizeof(message), "%c %d %" PRId64, kind, seq, t0);
    absl::StatusOr<std::pair<std::string, std::uint32_t>> r = c.Send("sink", message);
    const std::int64_t t1 = MonotonicNs();
    MustOk(r.status(), "Send");
    if (r->first != "delivered") {
      throw std::runtime_error("Send " + std::to_string(seq) + " was " + r->first +
                               ", not delivered: the process is not running");
    }
    if (out != nullptr) {
      out->latency_ns.push_back(t1 - t0);
      (*reply_at)[static_cast<std::size_t>(seq)] = t1;
    }
  }
  if (out != nullptr) {
    out->elapsed_ns += MonotonicNs() - start;
  }
}

MessageResult RunMessage(const Options& o, const Files& files, const fs::path& tmp) {
  MessageResult res;
  res.calls = o.calls;
  res.warmup = o.warmup;
  res.rounds = o.rounds;
  const fs::path out = tmp / "sink.out";
  Server server("message server", files, tmp / "msg", o.session_file);
  std::string toml = "[[process]]\n";
  toml += "name = \"sink\"\n";
  toml += "unit = \"" + files.unit + "\"\n";
  toml += "class = \"BenchSink\"\n";
  toml += "count = 1\n";
  toml += "arg = { out = \"" + out.string() + "\", reserve = " +
          std::to_string(o.calls + o.warmup + o.paced + 16) + " }\n";
  server.Start(toml);
  std::unique_ptr<ControlClient> client = server.Connect(20000);
  std::vector<ProcessRow> rows = server.WaitRunning(*client, 1, 20000, 20);
  PathPids pids;
  pids.client = ::getpid();
  pids.master = server.pid();
  pids.manager = server.ManagerPid();
  for (const ProcessRow& r : rows) {
    if (r.kind == "process" && r.name == "sink") {
      pids.process = static_cast<pid_t>(r.pid);
    }
  }
  std::printf("  server: master %d, manager %d, process sink.0 %d; socket %s\n",
              static_cast<int>(pids.master), static_cast<int>(pids.manager),
              static_cast<int>(pids.process), server.socket().c_str());
  std::fflush(stdout);

  // Warm-up: both calls, alternating, not recorded.
  for (int done = 0; done < o.warmup;) {
    const int n = std::min(500, o.warmup - done);
    DoPings(*client, n, nullptr);
    DoSends(*client, 'w', done, n, nullptr, nullptr);
    done += n;
  }

  // Measured: alternating rounds, Ping first in even rounds and Send first in odd ones.
  std::vector<std::int64_t> reply_at(static_cast<std::size_t>(o.calls), 0);
  res.ping.latency_ns.reserve(static_cast<std::size_t>(o.calls));
  res.send.latency_ns.reserve(static_cast<std::size_t>(o.calls));
  CpuWatch watch({server.pid()});
  const CpuSnapshot cpu0 = watch.Take();
  int seq = 0;
  for (int r = 0; r < o.rounds; ++r) {
    const int n = o.calls / o.rounds + (r < o.calls % o.rounds ? 1 : 0);
    for (int k = 0; k < 2; ++k) {
      const bool ping = (k == 0) == (r % 2 == 0);
      const PathTime a = ReadPath(pids);
      if (ping) {
        DoPings(*client, n, &res.ping);
      } else {
        DoSends(*client, 'm', seq, n, &res.send, &reply_at);
      }
      const PathTime b = ReadPath(pids);
      AddDelta(ping ? res.ping.cpu : res.send.cpu, a, b);
    }
    seq += n;
  }
  res.others_percent = CpuWatch::OthersPercent(cpu0, watch.Take());

  // Paced: the same Send at a steady rate well below saturation, so the process is not
  // competing with a back-to-back stream of calls for the CPUs.
  res.paced = o.paced;
  res.paced_rate = o.paced_rate;
  {
    const std::int64_t interval = 1000000000LL / o.paced_rate;
    std::int64_t next = MonotonicNs() + interval;
    char message[64];
    for (int i = 0; i < o.paced; ++i) {
      if ((i & 63) == 0) {
        CheckGoOn();
      }
      timespec at{static_cast<time_t>(next / 1000000000LL), static_cast<long>(next % 1000000000LL)};
      while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
        CheckGoOn();
      }
      next += interval;
      const std::int64_t t0 = MonotonicNs();
      std::snprintf(message, sizeof(message), "p %d %" PRId64, i, t0);
      absl::StatusOr<std::pair<std::string, std::uint32_t>> r = client->Send("sink", message);
      const std::int64_t t1 = MonotonicNs();
      MustOk(r.status(), "Send (paced)");
      res.paced_rtt_ns.push_back(t1 - t0);
    }
  }

  // What the process saw.
  fs::remove(out);
  absl::StatusOr<std::pair<std::string, std::uint32_t>> dumped = client->Send("sink", "dump");
  MustOk(dumped.status(), "Send dump");
  const std::int64_t deadline = MonotonicNs() + 10000000000LL;
  while (!fs::exists(out)) {
    CheckGoOn();
    if (MonotonicNs() > deadline) {
      server.Fail("the process did not write " + out.string() + " within 10 s of \"dump\"");
    }
    SleepMs(10);
  }
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  unsigned long long wakeups = 0, messages = 0;
  if (std::sscanf(line.c_str(), "wakeups %llu messages %llu", &wakeups, &messages) != 2) {
    throw std::runtime_error("malformed " + out.string() + ": '" + line + "'");
  }
  res.wakeups = wakeups;
  res.messages = messages;
  std::vector<char> seen(static_cast<std::size_t>(o.calls), 0);
  std::vector<char> paced_seen(static_cast<std::size_t>(o.paced), 0);
  bool ended = false;
  int measured = 0;
  while (std::getline(in, line)) {
    long long arrival = 0, sent = 0;
    int s = 0;
    char kind = 0;
    if (line.rfind("end ", 0) == 0) {
      ended = true;
      break;
    }
    if (std::sscanf(line.c_str(), "%lld %c %d %lld", &arrival, &kind, &s, &sent) != 4) {
      throw std::runtime_error("malformed line in " + out.string() + ": '" + line + "'");
    }
    if (kind == 'p') {
      if (s < 0 || s >= o.paced || paced_seen[static_cast<std::size_t>(s)]) {
        throw std::runtime_error("unexpected or duplicate paced message " + std::to_string(s));
      }
      paced_seen[static_cast<std::size_t>(s)] = 1;
      res.paced_e2e_ns.push_back(arrival - sent);
      continue;
    }
    if (kind != 'm') {
      continue;
    }
    if (s < 0 || s >= o.calls || seen[static_cast<std::size_t>(s)]) {
      throw std::runtime_error("unexpected or duplicate message " + std::to_string(s));
    }
    seen[static_cast<std::size_t>(s)] = 1;
    ++measured;
    res.e2e_ns.push_back(arrival - sent);
    const std::int64_t reply = reply_at[static_cast<std::size_t>(s)];
    if (arrival < reply) {
      ++res.before_reply;
    } else {
      res.reply_to_arrival.push_back(arrival - reply);
    }
  }
  if (!ended || measured != o.calls || static_cast<int>(res.paced_e2e_ns.size()) != o.paced) {
    throw std::runtime_error("the process reported " + std::to_string(measured) + " of " +
                             std::to_string(o.calls) + " messages and " +
                             std::to_string(res.paced_e2e_ns.size()) + " of " +
                             std::to_string(o.paced) + " paced ones" +
                             (ended ? "" : " (no end line)"));
  }
  client.reset();
  server.Stop(10000);
  return res;
}

// ---------------------------------------------------------------------------------------------
// 2. ps with N slots.

struct PsResult {
  int slots = 0;
  int rows = 0;
  int ctl_lines = 0;
  double start_s = 0;
  std::vector<std::int64_t> ping, list, connect_list, ctl;
  double master_ms_per_list = 0, manager_ms_per_list = 0, client_ms_per_list = 0;
  double others_percent = 0;
  double stop_ms = 0;
};

int CountLines(const fs::path& path) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
  }
  return n;
}

PsResult RunPs(const Options& o, const Files& files, const fs::path& tmp) {
  PsResult res;
  res.slots = o.slots;
  Server server("ps server", files, tmp / "ps", o.session_file);
  std::string toml = "[[process]]\n";
  toml += "name = \"idle\"\n";
  toml += "unit = \"" + files.unit + "\"\n";
  toml += "class = \"BenchIdle\"\n";
  toml += "count = " + std::to_string(o.slots) + "\n";
  const std::int64_t t0 = MonotonicNs();
  server.Start(toml);
  std::unique_ptr<ControlClient> client = server.Connect(20000);
  std::vector<ProcessRow> rows =
      server.WaitRunning(*client, o.slots, o.start_timeout_s * 1000, 250);
  res.start_s = (MonotonicNs() - t0) / 1e9;
  res.rows = static_cast<int>(rows.size());
  std::printf("  server: master %d, manager %d; %d slots running %.1f s after the start (%d rows;"
              " %d ListProcesses polls meanwhile, the slowest took %.0f ms)\n",
              static_cast<int>(server.pid()), static_cast<int>(server.ManagerPid()), o.slots,
              res.start_s, res.rows, server.polls(), server.slowest_poll_ms());
  std::fflush(stdout);
  SleepMs(500);  // let the last registry writes and status events settle

  // Warm-up.
  for (int i = 0; i < 3; ++i) {
    MustOk(client->ListProcesses().status(), "ListProcesses");
    DoPings(*client, 20, nullptr);
  }

  // Server CPU per ListProcesses, measured apart from the latency loop (no other calls mixed in).
  {
    const int n = std::max(10, std::min(o.ps_runs, 30));
    PathPids p;
    p.client = ::getpid();
    p.master = server.pid();
    p.manager = server.ManagerPid();
    const PathTime a = ReadPath(p);
    for (int i = 0; i < n; ++i) {
      CheckGoOn();
      MustOk(client->ListProcesses().status(), "ListProcesses");
    }
    const PathTime b = ReadPath(p);
    res.client_ms_per_list = (b.client.run_ns - a.client.run_ns) / 1e6 / n;
    res.master_ms_per_list = (b.master.run_ns - a.master.run_ns) / 1e6 / n;
    res.manager_ms_per_list = (b.manager.run_ns - a.manager.run_ns) / 1e6 / n;
  }

  const fs::path ctl_out = tmp / "ps.out";
  const fs::path ctl_err = tmp / "ps.err";
  const std::vector<std::string> ctl_argv = {files.sprocketctl,
                                             "--run_dir=" + server.run_dir().string(), "ps"};
  CpuWatch watch({server.pid()});
  const CpuSnapshot cpu0 = watch.Take();
  for (int i = 0; i < o.ps_runs; ++i) {
    CheckGoOn();
    // The order rotates, so none of the three always runs right after another.
    for (int k = 0; k < 3; ++k) {
      switch ((i + k) % 3) {
        case 0: {
          std::int64_t a = MonotonicNs();
          absl::StatusOr<std::vector<ProcessRow>> r = client->ListProcesses();
          std::int64_t b = MonotonicNs();
          MustOk(r.status(), "ListProcesses");
          if (static_cast<int>(r->size()) < o.slots) {
            throw std::runtime_error("ListProcesses returned " + std::to_string(r->size()) +
                                     " rows, fewer than the slots");
          }
          res.list.push_back(b - a);
          a = MonotonicNs();
          MustOk(client->Ping(), "Ping");
          b = MonotonicNs();
          res.ping.push_back(b - a);
          break;
        }
        case 1: {
          const std::int64_t a = MonotonicNs();
          absl::StatusOr<std::unique_ptr<ControlClient>> c =
              ControlClient::ConnectPrivate(server.socket());
          MustOk(c.status(), "connect");
          absl::StatusOr<std::vector<ProcessRow>> r = (*c)->ListProcesses();
          c->reset();
          const std::int64_t b = MonotonicNs();
          MustOk(r.status(), "ListProcesses (new connection)");
          res.connect_list.push_back(b - a);
          break;
        }
        case 2: {
          const std::int64_t a = MonotonicNs();
          Child ctl = Spawn({ctl_argv, {}, ctl_out, ctl_err, Detach::kNone});
          std::optional<int> status = WaitExit(ctl.pid, ctl.pidfd, 10000);
          const std::int64_t b = MonotonicNs();
          ::close(ctl.pidfd);
          if (!status) {
            ::kill(ctl.pid, SIGKILL);
            WaitExit(ctl.pid, -1, 2000);
            throw std::runtime_error("sprocketctl ps did not finish within 10 s");
          }
          if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
            throw std::runtime_error("sprocketctl ps: " + DescribeStatus(*status) + ": " +
                                     ReadFile(ctl_err));
          }
          res.ctl.push_back(b - a);
          if (res.ctl.size() == 1) {
            res.ctl_lines = CountLines(ctl_out);
          }
          break;
        }
      }
    }
  }
  res.others_percent = CpuWatch::OthersPercent(cpu0, watch.Take());
  client.reset();
  const std::int64_t s0 = MonotonicNs();
  server.Stop(30000);
  res.stop_ms = (MonotonicNs() - s0) / 1e6;
  return res;
}

// ---------------------------------------------------------------------------------------------

void PrintLatencyHeader(const char* first) {
  std::printf("  %-40s %10s %9s %9s %9s %9s %9s\n", first, "calls/s", "p50 ms", "p90 ms",
              "p99 ms", "p99.9 ms", "max ms");
}

void PrintLatencyRow(const std::string& name, double rate, const Stats& s) {
  std::printf("  %-40s %10s %9.3f %9.3f %9.3f %9.3f %9.3f\n", name.c_str(),
              rate > 0 ? Thousands(rate).c_str() : "-", s.p50, s.p90, s.p99, s.p999, s.max);
}

void PrintCpuRow(const char* name, const PathTime& t, int calls) {
  auto us = [&](std::int64_t ns) { return static_cast<double>(ns) / 1e3 / calls; };
  auto per = [&](std::int64_t n) { return static_cast<double>(n) / calls; };
  const SchedTime* all[] = {&t.client, &t.master, &t.manager, &t.process};
  std::int64_t run = 0, wait = 0, slices = 0;
  for (const SchedTime* s : all) {
    run += s->run_ns;
    wait += s->wait_ns;
    slices += s->slices;
  }
  std::printf("  %-22s", name);
  for (const SchedTime* s : all) {
    std::printf(" %6.1f/%-4.1f", us(s->run_ns), per(s->slices));
  }
  std::printf(" %6.1f/%-4.1f %9.1f\n", us(run), per(slices), us(wait));
}

void PrintHeader(const Options& o, const fs::path& tmp) {
  struct statfs fs_info {};
  const bool tmpfs = ::statfs(tmp.c_str(), &fs_info) == 0 && fs_info.f_type == TMPFS_MAGIC;
#ifdef NDEBUG
  const char* mode = "opt";
#else
  const char* mode = "NOT -c opt";
#endif
  std::printf("== bench_message: sprocket's control API on RUN_DIR/control.sock (peer-to-peer D-Bus)\n");
  std::printf("  %u CPUs (%s), load average %s; driver build: %s\n",
              std::thread::hardware_concurrency(), CpuModel().c_str(), LoadAverage().c_str(), mode);
  // How busy the machine is before we start anything: the load others put on it.
  const CpuTicks before = MachineTicks();
  SleepMs(1000);
  const double busy = BusyPercent(before, MachineTicks());
  std::printf("  machine busy before the start: %.0f%% of all CPUs (1 s sample, nothing of ours "
              "running)\n", busy);
  std::printf("  temp dir %s (%s); %d calls of each kind after %d warm-up, %d slots for ps\n\n",
              tmp.c_str(), tmpfs ? "tmpfs" : "not tmpfs", o.calls, o.warmup, o.slots);
}

struct Goals {
  std::vector<std::pair<std::string, bool>> lines;  // text, met
};

void ReportMessage(const MessageResult& m, Goals& goals) {
  const double ping_rate = m.calls / (m.ping.elapsed_ns / 1e9);
  const double send_rate = m.calls / (m.send.elapsed_ns / 1e9);
  const double ratio = send_rate / ping_rate;
  const Stats ping = SummarizeNs(m.ping.latency_ns);
  const Stats send = SummarizeNs(m.send.latency_ns);
  const Stats e2e = SummarizeNs(m.e2e_ns);
  const Stats after = SummarizeNs(m.reply_to_arrival);
  std::printf("\n");
  PrintLatencyHeader("");
  PrintLatencyRow("Ping (no-op: the D-Bus floor)", ping_rate, ping);
  PrintLatencyRow("Send, round trip (reply received)", send_rate, send);
  PrintLatencyRow("Send -> OnPipeReadable (end to end)", 0, e2e);
  if (m.paced > 0) {
    std::printf("  then %d Sends paced at %d/s (not back to back; context, not a goal):\n",
                m.paced, m.paced_rate);
    PrintLatencyRow("  Send, round trip, paced", 0, SummarizeNs(m.paced_rtt_ns));
    PrintLatencyRow("  Send -> OnPipeReadable, paced", 0, SummarizeNs(m.paced_e2e_ns));
  }
  std::printf("\n  Send/Ping calls/s = %.2f\n", ratio);
  std::printf("  OnPipeReadable began before the client had the reply for %.1f%% of messages;"
              " otherwise %.3f ms after it (p50), %.3f ms (p99)\n",
              100.0 * static_cast<double>(m.before_reply) / m.calls, after.p50, after.p99);
  std::printf("  the process got %llu messages in %llu OnPipeReadable calls (incl. warm-up and "
              "\"dump\")\n",
              static_cast<unsigned long long>(m.messages),
              static_cast<unsigned long long>(m.wakeups));
  std::printf("\n  per call: CPU us / wake-ups   %-11s %-11s %-11s %-11s %-11s %9s\n", "client",
              "master", "manager", "process", "total", "runq us");
  PrintCpuRow("Ping", m.ping.cpu, m.calls);
  PrintCpuRow("Send", m.send.cpu, m.calls);
  std::printf("  (from /proc/PID/task/*/schedstat; runq: time runnable but waiting for a CPU)\n");
  std::printf("  wall time per call, us: Ping %.1f, Send %.1f\n", m.ping.elapsed_ns / 1e3 / m.calls,
              m.send.elapsed_ns / 1e3 / m.calls);
  std::printf("  other processes used %.0f%% of the CPUs during the measurement%s\n",
              m.others_percent,
              m.others_percent > kNoisyOthersPercent ? " (NOISY: rerun on a quiet machine)" : "");
  char line[256];
  std::snprintf(line, sizeof(line), "Send calls/s >= 0.80x Ping calls/s      (%.2fx: %s vs %s calls/s)",
                ratio, Thousands(send_rate).c_str(), Thousands(ping_rate).c_str());
  goals.lines.emplace_back(line, ratio >= 0.8);
  std::snprintf(line, sizeof(line),
                "Send -> OnPipeReadable p99 <= 2 ms      (%.3f ms; Send round trip p99 %.3f ms)",
                e2e.p99, send.p99);
  goals.lines.emplace_back(line, e2e.p99 <= 2.0);
}

void ReportPs(const PsResult& p, Goals& goals) {
  const Stats ps_ping = SummarizeNs(p.ping);
  const Stats list = SummarizeNs(p.list);
  const Stats connect_list = SummarizeNs(p.connect_list);
  const Stats ctl = SummarizeNs(p.ctl);
  std::printf("\n");
  std::printf("  %-52s %9s %9s %9s %9s %9s\n", "", "p50 ms", "p90 ms", "p99 ms", "max ms",
              "mean ms");
  auto row = [](const std::string& name, const Stats& s) {
    std::printf("  %-52s %9.3f %9.3f %9.3f %9.3f %9.3f\n", name.c_str(), s.p50, s.p90, s.p99,
                s.max, s.mean);
  };
  row("Ping, same connection (floor)", ps_ping);
  row("ListProcesses, one connection (client library)", list);
  row("connect + ListProcesses + close", connect_list);
  row("sprocketctl ps (fork, exec, " + std::to_string(p.ctl_lines) + " lines to a file)", ctl);
  std::printf("\n  CPU per ListProcesses (schedstat): master %.2f ms, manager %.2f ms, client "
              "%.2f ms\n",
              p.master_ms_per_list, p.manager_ms_per_list, p.client_ms_per_list);
  std::printf("  other processes used %.0f%% of the CPUs during the measurement%s\n",
              p.others_percent,
              p.others_percent > kNoisyOthersPercent ? " (NOISY: rerun on a quiet machine)" : "");
  char line[256];
  std::snprintf(line, sizeof(line),
                "ps with %d slots <= 100 ms%*s(sprocketctl ps p99 %.1f ms, p50 %.1f ms; "
                "ListProcesses p99 %.1f ms, p50 %.1f ms)",
                p.slots, std::max(1, 16 - static_cast<int>(std::to_string(p.slots).size())), "",
                ctl.p99, ctl.p50, list.p99, list.p50);
  goals.lines.emplace_back(line, ctl.p99 <= 100.0);
}

int Main(int argc, char** argv) {
  const Options o = ParseOptions(argc, argv);
  g_run_deadline_ns = MonotonicNs() + static_cast<std::int64_t>(o.max_seconds) * 1000000000LL;
  CatchInterrupts({SIGINT, SIGTERM});
  ::signal(SIGPIPE, SIG_IGN);

  const Files files = FindFiles(argv[0]);
  TempDir tmp(TempParent(o), "bm", o.keep_tmp);
  PrintHeader(o, tmp.path());
  const std::int64_t run_start = MonotonicNs();
  Goals goals;

  if (o.run_message) {
    std::printf("== 1. Send -> OnPipeReadable beside Ping (no-op), one connection, %d rounds "
                "alternating\n", o.rounds);
    std::fflush(stdout);
    ReportMessage(RunMessage(o, files, tmp.path()), goals);
    std::printf("\n");
    std::fflush(stdout);
  }
  if (o.run_ps) {
    std::printf("== 2. ps with %d slots (one registration, count = %d, of BenchIdle); %d runs "
                "each, interleaved\n", o.slots, o.slots, o.ps_runs);
    std::fflush(stdout);
    ReportPs(RunPs(o, files, tmp.path()), goals);
    std::printf("\n");
  }

  bool all = true;
  std::printf("== goals\n");
  for (const auto& [text, met] : goals.lines) {
    std::printf("  %-8s %s\n", Met(met), text.c_str());
    all = all && met;
  }
  std::printf("  benchmark time: %.0f s (after the build)\n", (MonotonicNs() - run_start) / 1e9);
  std::fflush(stdout);
  return o.check && !all ? 3 : 0;
}

}  // namespace
}  // namespace sprocket::bench

int main(int argc, char** argv) {
  try {
    return sprocket::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "bench_message: %s\n", e.what());
    return 1;
  }
}
