// The manager's supervision logic (see supervisor.h).
//
// A Slot is a registry entry (one process instance or one worker) and never goes away while the
// supervisor lives. A Child is one forked process serving a slot: the slot's `current` one, its
// `replacement` while a reload starts a new worker, or a retired worker draining in `retired_`.
// Event-loop callbacks hold a weak_ptr to their Child, so a callback for a process that has
// since been replaced finds nothing and does nothing.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <optional>

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <glog/logging.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "process/backoff.h"
#include "process/channel.h"
#include "process/child_runtime.h"
#include "process/exit_codes.h"
#include "process/frame_channel.h"
#include "process/supervisor.h"

namespace sprocket {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

enum class SlotKind { kProcess, kWorker };
enum class SlotState { kStarting, kRunning, kBackoff, kStopping, kStopped, kFailed };

const char* StateName(SlotState s) {
  switch (s) {
    case SlotState::kStarting:
      return "starting";
    case SlotState::kRunning:
      return "running";
    case SlotState::kBackoff:
      return "backoff";
    case SlotState::kStopping:
      return "stopping";
    case SlotState::kStopped:
      return "stopped";
    case SlotState::kFailed:
      return "failed";
  }
  return "unknown";
}

struct Child {
  explicit Child(asio::io_context& io) : kill_timer(io) {}
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  Clock::time_point started;
  std::int64_t started_at_ms = 0;
  std::optional<asio::posix::stream_descriptor> pidfd;
  std::shared_ptr<FrameChannel> channel;
  bool ready = false;
  // The child said it is stopping on request: its clean exit is a restart, not a crash.
  bool deliberate = false;
  // The manager's end of the child's mailbox until the master takes it (process children).
  UniqueFd mailbox;
  std::string load_error;
  asio::steady_timer kill_timer;
};

struct Slot {
  Slot(asio::io_context& io, SlotKind k, std::string n, std::string g, int i, std::string u,
       const RestartPolicy& p, std::chrono::milliseconds wait)
      : kind(k), name(std::move(n)), group(std::move(g)), index(i), unit(std::move(u)),
        policy(p), exit_wait(wait), respawn_timer(io) {}

  std::string Label() const {
    return absl::StrCat(kind == SlotKind::kWorker ? "worker " : "process ",
                        kind == SlotKind::kWorker ? "" : name + " ", index);
  }

  const SlotKind kind;
  const std::string name;
  const std::string group;
  const int index;
  const std::string unit;
  const RestartPolicy& policy;
  // OnShutdown bound (processes) or drain bound (workers).
  const std::chrono::milliseconds exit_wait;
  const ProcessConfig* process = nullptr;
  SlotState state = SlotState::kStarting;
  int restarts = 0;
  std::string last_exit;
  std::string reason;
  BackoffState backoff;
  asio::steady_timer respawn_timer;
  std::shared_ptr<Child> current;
  std::shared_ptr<Child> replacement;
  // A process child forked, held before loading the unit, while `current` shuts down on request.
  std::shared_ptr<Child> next;
  // Set while a reload waits for this process slot to run again (or to fail).
  std::function<void(const absl::Status&)> on_restarted;
};

// Resident set size from /proc/PID/statm (pages), 0 if the process is gone.
std::uint64_t ResidentBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/statm"));
  std::uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

json Reply(int code, json result, std::string msg) {
  return {{"code", code}, {"result", std::move(result)}, {"msg", std::move(msg)}};
}

class SupervisorImpl final : public Supervisor {
 public:
  SupervisorImpl(asio::io_context& io, Os& os, SupervisorOptions options, Registry& registry);

  // sprocket::Supervisor
  void Start(std::function<void()> on_settled) override;
  void Reload(std::function<void(absl::Status)> done) override;
  void HandleRequest(const json& request, std::function<void(json)> reply) override;
  void Stop(std::function<void()> on_stopped) override;
  std::vector<SlotRecord> Snapshot() const override;

 private:
  // Forking and watching.
  std::shared_ptr<Child> Spawn(Slot& slot, bool held = false);
  [[noreturn]] void RunChild(Slot& slot, UniqueFd channel, UniqueFd mailbox, bool held);
  void ForkAhead(Slot& slot, const std::shared_ptr<Child>& stopping);
  bool TakeNext(Slot& slot);
  // Watches the child's pidfd for its exit and, with `channel`, starts reading its frames.
  void Watch(Slot& slot, const std::shared_ptr<Child>& child, bool channel = true);
  void OnFrame(Slot& slot, const std::shared_ptr<Child>& child, Frame frame);
  void OnReady(Slot& slot, const std::shared_ptr<Child>& child);
  void Emit(const Slot& slot, const Child& child, const char* event);
  void OnExit(Slot& slot, const std::shared_ptr<Child>& child);
  void OnCurrentExit(Slot& slot, const ExitStatus& status, Clock::duration uptime, bool clean);
  void OnReplacementExit(Slot& slot, const std::shared_ptr<Child>& child);
  void RecordExit(Slot& slot, const Child& child, const ExitStatus& status);
  void SpawnCurrent(Slot& slot);
  void ScheduleRespawn(Slot& slot, Clock::duration uptime, bool clean);
  void Terminate(const std::shared_ptr<Child>& child, std::chrono::milliseconds wait,
                 const std::string& label);

  // Reload.
  void ReloadNext();
  void ReloadWorker(Slot& slot);
  void ReloadProcess(Slot& slot);
  void PromoteReplacement(Slot& slot);
  void FinishReload(const absl::Status& result);

  // Control requests.
  json Restart(const json& request);
  json RestartSlots(const std::vector<Slot*>& slots);
  json List() const;
  std::vector<Slot*> SelectSlots(const json& request, json& error);
  std::string NoMatch(const std::string& name, bool has_index, int index,
                      const std::string& group) const;

  void Publish();
  void PublishNow();
  std::string StatusLine() const;
  void CheckSettled();
  void CheckStopped();
  void StopKind(SlotKind kind);

  asio::io_context& io_;
  Os& os_;
  SupervisorOptions options_;
  Registry& registry_;
  const pid_t manager_pid_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::shared_ptr<Child>> retired_;
  std::function<void()> on_settled_;
  std::function<void()> on_stopped_;
  bool stopping_ = false;
  // Which kind of slot a stop is waiting for: workers, then processes.
  SlotKind stopping_kind_ = SlotKind::kWorker;
  // Reload state: the slots still to go, who waits for this run, who waits for the next one.
  bool reloading_ = false;
  std::deque<Slot*> reload_plan_;
  std::vector<std::function<void(absl::Status)>> reload_waiters_;
  std::vector<std::function<void(absl::Status)>> next_reload_waiters_;
  // "ok" or "failed: reason" for the status line; empty before the first reload.
  std::string last_reload_;
  std::string status_line_;
  bool publish_pending_ = false;
  // Every slot has exited and on_stopped ran: the registry is the caller's to remove.
  bool stopped_ = false;
};

SupervisorImpl::SupervisorImpl(asio::io_context& io, Os& os, SupervisorOptions options,
                               Registry& registry)
    : io_(io), os_(os), options_(std::move(options)), registry_(registry),
      manager_pid_(::getpid()) {
  const HttpConfig& http = options_.http;
  for (int i = 0; i < options_.workers; ++i) {
    slots_.push_back(std::make_unique<Slot>(io, SlotKind::kWorker, "worker", "", i,
                                            absl::StrJoin(http.units, ","), http.restart,
                                            http.max_wait_time));
  }
  for (const ProcessConfig& config : options_.processes) {
    for (int i = 0; i < config.count; ++i) {
      slots_.push_back(std::make_unique<Slot>(io, SlotKind::kProcess, config.name, config.group,
                                              i, config.unit, config.restart,
                                              config.max_exit_wait));
      slots_.back()->process = &config;
    }
  }
}

void SupervisorImpl::Start(std::function<void()> on_settled) {
  on_settled_ = std::move(on_settled);
  for (auto& slot : slots_) {
    SpawnCurrent(*slot);
  }
  Publish();
  CheckSettled();
}

// ---------------------------------------------------------------------------------------------
// Forking and watching.

std::shared_ptr<Child> SupervisorImpl::Spawn(Slot& slot, bool held) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
    PLOG(ERROR) << slot.Label() << ": socketpair";
    return nullptr;
  }
  UniqueFd ours(pair[0]);
  UniqueFd theirs(pair[1]);
  UniqueFd mailbox_ours, mailbox_theirs;
  if (slot.kind == SlotKind::kProcess) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
      PLOG(ERROR) << slot.Label() << ": socketpair";
      return nullptr;
    }
    mailbox_ours.Reset(pair[0]);
    mailbox_theirs.Reset(pair[1]);
  }
  absl::StatusOr<pid_t> pid = os_.Fork();
  if (!pid.ok()) {
    LOG(ERROR) << slot.Label() << ": " << pid.status().message();
    return nullptr;
  }
  if (*pid == 0) {
    ours.Reset();
    mailbox_ours.Reset();
    RunChild(slot, std::move(theirs), std::move(mailbox_theirs), held);
  }
  theirs.Reset();
  mailbox_theirs.Reset();
  // pidfd_open on our own unreaped child cannot fail but for fd exhaustion: a broken manager.
  absl::StatusOr<UniqueFd> pidfd = os_.PidfdOpen(*pid);
  CHECK(pidfd.ok()) << pidfd.status();
  auto child = std::make_shared<Child>(io_);
  child->pid = *pid;
  child->start_time = os_.StartTime(*pid).value_or(0);
  child->started = Clock::now();
  child->started_at_ms = absl::ToUnixMillis(absl::Now());
  child->pidfd.emplace(io_, pidfd->Release());
  child->channel = FrameChannel::Create(io_, std::move(ours));
  child->mailbox = std::move(mailbox_ours);
  Watch(slot, child);
  return child;
}

void SupervisorImpl::RunChild(Slot& slot, UniqueFd channel, UniqueFd mailbox, bool held) {
  if (slot.kind == SlotKind::kProcess) {
    RunProcessChild(manager_pid_, *slot.process, slot.index, std::move(channel),
                    std::move(mailbox), held);
  }
  options_.worker_main(manager_pid_, slot.index, std::move(channel));
  ::_exit(kExitChildSetup);  // worker_main never returns
}

void SupervisorImpl::Watch(Slot& slot, const std::shared_ptr<Child>& child, bool channel) {
  std::weak_ptr<Child> weak = child;
  child->pidfd->async_wait(asio::posix::descriptor_base::wait_read,
                           [this, &slot, weak](boost::system::error_code ec) {
                             if (auto c = weak.lock(); c && !ec) {
                               OnExit(slot, c);
                             }
                           });
  if (!channel) {
    return;
  }
  child->channel->Start(
      [this, &slot, weak](Frame frame) {
        if (auto c = weak.lock()) {
          OnFrame(slot, c, std::move(frame));
        }
      },
      [](const absl::Status&) {});  // the pidfd reports the exit
}

void SupervisorImpl::OnFrame(Slot& slot, const std::shared_ptr<Child>& child, Frame frame) {
  switch (frame.type) {
    case FrameType::kReady:
      OnReady(slot, child);
      break;
    case FrameType::kLoadError:
      child->load_error = std::move(frame.payload);
      break;
    case FrameType::kStopping:
      child->deliberate = true;
      ForkAhead(slot, child);
      break;
    case FrameType::kRequest: {
      json request = json::parse(frame.payload, nullptr, /*allow_exceptions=*/false);
      std::weak_ptr<FrameChannel> channel = child->channel;
      HandleRequest(request, [channel, id = request.is_object() ? request.value("id", json()) : json()](json r) {
        r["id"] = id;
        if (auto c = channel.lock()) {
          c->Send(FrameType::kResponse, r.dump());
        }
      });
      break;
    }
    case FrameType::kMessage:
    case FrameType::kResponse:
    case FrameType::kEvent:
    case FrameType::kStart:
    case FrameType::kAck:
      break;  // children neither send messages nor answer requests
  }
}

void SupervisorImpl::OnReady(Slot& slot, const std::shared_ptr<Child>& child) {
  child->ready = true;
  if (child == slot.replacement) {
    PromoteReplacement(slot);
    return;
  }
  if (child != slot.current) {
    return;
  }
  slot.state = SlotState::kRunning;
  slot.reason.clear();
  if (child->mailbox && options_.on_mailbox) {
    options_.on_mailbox(slot.name, slot.index, child->pid, std::move(child->mailbox));
  }
  Emit(slot, *child, "started");
  Publish();
  CheckSettled();
  if (slot.on_restarted) {
    std::exchange(slot.on_restarted, nullptr)(absl::OkStatus());
  }
}

void SupervisorImpl::Emit(const Slot& slot, const Child& child, const char* event) {
  if (!options_.on_event) {
    return;
  }
  json e = {{"event", event},
            {"kind", slot.kind == SlotKind::kWorker ? "worker" : "process"},
            {"name", slot.name},
            {"index", slot.index},
            {"pid", child.pid}};
  if (std::string_view(event) == "exited") {
    e["last_exit"] = slot.last_exit;
    // What happens next: "starting", "backoff", "failed" (gave up) or "stopped".
    e["state"] = StateName(slot.state);
  }
  options_.on_event(std::move(e));
}

void SupervisorImpl::OnExit(Slot& slot, const std::shared_ptr<Child>& child) {
  absl::StatusOr<ExitStatus> status = os_.WaitPidfd(child->pidfd->native_handle());
  if (absl::IsUnavailable(status.status())) {
    Watch(slot, child, /*channel=*/false);
    return;
  }
  CHECK(status.ok()) << slot.Label() << ": " << status.status();
  child->channel->DrainNow();
  child->channel->Close();
  child->pidfd.reset();
  child->kill_timer.cancel();
  const Clock::duration uptime = Clock::now() - child->started;
  const bool clean = child->deliberate && !status->signaled && status->code == kExitClean;
  if (child == slot.current) {
    RecordExit(slot, *child, *status);
    slot.current.reset();
    OnCurrentExit(slot, *status, uptime, clean);
    Emit(slot, *child, "exited");
  } else if (child == slot.replacement) {
    RecordExit(slot, *child, *status);
    OnReplacementExit(slot, child);
  } else if (child == slot.next) {
    LOG(WARNING) << slot.Label() << ": pid " << child->pid << ", forked ahead, ended ("
                 << DescribeExit(*status) << ") before it was needed";
    slot.next.reset();
  } else {
    LOG(INFO) << slot.Label() << ": retired pid " << child->pid << " ended ("
              << DescribeExit(*status) << ")";
    std::erase(retired_, child);
    CheckStopped();
  }
}

void SupervisorImpl::OnCurrentExit(Slot& slot, const ExitStatus& status, Clock::duration uptime,
                                   bool clean) {
  if (stopping_) {
    slot.state = SlotState::kStopped;
    LOG(INFO) << slot.Label() << " stopped (" << slot.last_exit << ")";
    Publish();
    CheckStopped();
    return;
  }
  ScheduleRespawn(slot, uptime, clean);
}

void SupervisorImpl::RecordExit(Slot& slot, const Child& child, const ExitStatus& status) {
  slot.last_exit = DescribeExit(status);
  if (!child.load_error.empty()) {
    slot.reason = child.load_error;
  } else if (!status.signaled && status.code != kExitClean) {
    const std::string name(ExitCodeName(status.code));
    slot.reason = name.empty() ? slot.last_exit : absl::StrCat(slot.last_exit, " (", name, ")");
  } else if (status.signaled) {
    slot.reason = absl::StrCat("killed by ", slot.last_exit);
  } else {
    slot.reason.clear();
  }
}

void SupervisorImpl::SpawnCurrent(Slot& slot) {
  slot.respawn_timer.cancel();
  slot.current = Spawn(slot);
  if (!slot.current) {
    ScheduleRespawn(slot, Clock::duration::zero(), /*clean=*/false);
    return;
  }
  slot.state = SlotState::kStarting;
}

// A process acknowledged a stop request (a hot restart, most often): fork its successor now,
// while it runs OnShutdown, so fork and setup are done by the time it exits. The successor
// waits for kStart before loading the unit, so it still runs the code on disk then.
void SupervisorImpl::ForkAhead(Slot& slot, const std::shared_ptr<Child>& stopping) {
  if (stopping_ || slot.kind != SlotKind::kProcess || stopping != slot.current || slot.next) {
    return;
  }
  slot.next = Spawn(slot, /*held=*/true);
}

// Puts the child forked ahead in place of the one that exited; false if there is none.
bool SupervisorImpl::TakeNext(Slot& slot) {
  if (!slot.next) {
    return false;
  }
  slot.respawn_timer.cancel();
  slot.current = std::exchange(slot.next, nullptr);
  slot.current->started = Clock::now();
  slot.current->started_at_ms = absl::ToUnixMillis(absl::Now());
  slot.current->channel->Send(FrameType::kStart, "");
  slot.state = SlotState::kStarting;
  return true;
}

void SupervisorImpl::ScheduleRespawn(Slot& slot, Clock::duration uptime, bool clean) {
  const auto up = std::chrono::duration_cast<std::chrono::milliseconds>(uptime);
  const RespawnDecision decision = DecideRespawn(slot.policy, slot.backoff, up, clean);
  ++slot.restarts;
  if (decision.give_up) {
    slot.state = SlotState::kFailed;
    LOG(ERROR) << slot.Label() << ": gave up after " << slot.backoff.young_failures
               << " young failures; last: " << slot.reason;
  } else if (decision.delay.count() == 0) {
    LOG(INFO) << slot.Label() << " ended (" << slot.last_exit << "), respawning";
    if (!TakeNext(slot)) {
      SpawnCurrent(slot);
    }
  } else {
    slot.state = SlotState::kBackoff;
    LOG(WARNING) << slot.Label() << " died young (" << slot.reason << "); respawning in "
                 << decision.delay.count() << " ms";
    slot.respawn_timer.expires_after(decision.delay);
    slot.respawn_timer.async_wait([this, &slot](boost::system::error_code ec) {
      if (!ec && slot.state == SlotState::kBackoff && !stopping_) {
        SpawnCurrent(slot);
        Publish();
      }
    });
  }
  if (slot.state != SlotState::kStarting && slot.next) {
    // Not respawning now: the successor forked ahead is not wanted.
    Terminate(slot.next, slot.exit_wait, slot.Label());
    retired_.push_back(std::exchange(slot.next, nullptr));
  }
  if (slot.state != SlotState::kStarting && slot.on_restarted) {
    std::exchange(slot.on_restarted, nullptr)(
        absl::UnavailableError(absl::StrCat(slot.Label(), ": ", slot.reason)));
  }
  Publish();
  CheckSettled();
}

void SupervisorImpl::Terminate(const std::shared_ptr<Child>& child,
                               std::chrono::milliseconds wait, const std::string& label) {
  (void)os_.Kill(child->pid, SIGTERM);
  // The child bounds its own shutdown by `wait`; this is the backstop if it cannot.
  child->kill_timer.expires_after(wait + std::chrono::milliseconds(500));
  std::weak_ptr<Child> weak = child;
  child->kill_timer.async_wait([this, weak, label](boost::system::error_code ec) {
    auto c = weak.lock();
    if (!ec && c && c->pidfd) {
      LOG(WARNING) << label << " (pid " << c->pid << ") did not exit in time; sending SIGKILL";
      (void)os_.Kill(c->pid, SIGKILL);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Reload.

void SupervisorImpl::Reload(std::function<void(absl::Status)> done) {
  if (stopping_) {
    done(absl::UnavailableError("the server is stopping"));
    return;
  }
  if (reloading_) {
    next_reload_waiters_.push_back(std::move(done));
    return;
  }
  reloading_ = true;
  reload_waiters_.push_back(std::move(done));
  for (auto& slot : slots_) {
    if (slot->kind == SlotKind::kWorker || (slot->process && slot->process->reload)) {
      reload_plan_.push_back(slot.get());
    }
  }
  LOG(INFO) << "reload: replacing " << reload_plan_.size() << " slot(s), one at a time";
  ReloadNext();
}

void SupervisorImpl::ReloadNext() {
  if (reload_plan_.empty()) {
    FinishReload(absl::OkStatus());
    return;
  }
  Slot& slot = *reload_plan_.front();
  if (slot.kind == SlotKind::kWorker) {
    ReloadWorker(slot);
  } else {
    ReloadProcess(slot);
  }
}

void SupervisorImpl::ReloadWorker(Slot& slot) {
  slot.replacement = Spawn(slot);
  if (!slot.replacement) {
    FinishReload(absl::InternalError(absl::StrCat(slot.Label(), ": cannot fork a replacement")));
  }
}

void SupervisorImpl::ReloadProcess(Slot& slot) {
  slot.on_restarted = [this](const absl::Status& status) {
    if (!status.ok()) {
      FinishReload(status);
      return;
    }
    reload_plan_.pop_front();
    ReloadNext();
  };
  if (slot.current) {
    Terminate(slot.current, slot.exit_wait, slot.Label());
  } else {
    SpawnCurrent(slot);
    Publish();
  }
}

void SupervisorImpl::PromoteReplacement(Slot& slot) {
  std::shared_ptr<Child> old = std::move(slot.current);
  slot.current = std::move(slot.replacement);
  slot.state = SlotState::kRunning;
  slot.reason.clear();
  slot.backoff = {};
  slot.respawn_timer.cancel();
  if (old) {
    LOG(INFO) << slot.Label() << ": pid " << slot.current->pid << " is serving; pid " << old->pid
              << " drains";
    Terminate(old, slot.exit_wait, slot.Label());
    retired_.push_back(std::move(old));
  }
  Publish();
  if (!reload_plan_.empty() && reload_plan_.front() == &slot) {
    reload_plan_.pop_front();
    ReloadNext();
  }
}

void SupervisorImpl::OnReplacementExit(Slot& slot, const std::shared_ptr<Child>& child) {
  slot.replacement.reset();
  const std::string reason = child->load_error.empty() ? slot.reason : child->load_error;
  LOG(ERROR) << "reload: " << slot.Label() << " replacement (pid " << child->pid
             << ") failed: " << reason << "; the old worker keeps serving";
  Publish();
  FinishReload(absl::FailedPreconditionError(
      absl::StrCat(slot.Label(), ": the new worker failed to start: ", reason)));
}

void SupervisorImpl::FinishReload(const absl::Status& result) {
  last_reload_ = result.ok() ? "ok" : absl::StrCat("failed: ", result.message());
  reload_plan_.clear();
  reloading_ = false;
  // Whoever learns that the reload finished (the log, the signal, the caller) may read the
  // registry at once: it must already show the new pids.
  PublishNow();
  LOG(INFO) << "reload " << (result.ok() ? "finished" : "failed: " + std::string(result.message()));
  if (options_.on_event) {
    options_.on_event({{"event", "reload_finished"},
                       {"ok", result.ok()},
                       {"reason", std::string(result.message())}});
  }
  for (auto& done : std::exchange(reload_waiters_, {})) {
    done(result);
  }
  if (!next_reload_waiters_.empty()) {
    std::vector<std::function<void(absl::Status)>> next = std::exchange(next_reload_waiters_, {});
    for (size_t i = 1; i < next.size(); ++i) {
      reload_waiters_.push_back(std::move(next[i]));
    }
    Reload(std::move(next[0]));
  }
}

// ---------------------------------------------------------------------------------------------
// Control requests.

void SupervisorImpl::HandleRequest(const json& request, std::function<void(json)> reply) {
  const std::string op =
      request.is_object() && request.contains("op") && request["op"].is_string()
          ? request["op"].get<std::string>()
          : "";
  if (op == "ping") {
    reply(Reply(200, nullptr, "pong"));
  } else if (op == "list") {
    reply(Reply(200, List(), "ok"));
  } else if (op == "restart") {
    reply(Restart(request));
  } else if (op == "send" && options_.call_master) {
    // Messages are the master's: it holds each process's mailbox and its queue.
    options_.call_master(request, std::move(reply));
  } else if (op == "reload") {
    Reload([reply](absl::Status s) {
      reply(s.ok() ? Reply(200, nullptr, "reload finished")
                   : Reply(500, nullptr, absl::StrCat("reload failed: ", s.message())));
    });
  } else {
    reply(Reply(400, nullptr, absl::StrCat("unknown control request '", op, "'")));
  }
}

json SupervisorImpl::List() const {
  json out = json::array();
  const std::int64_t now = absl::ToUnixMillis(absl::Now());
  for (const SlotRecord& r : Snapshot()) {
    json entry = ToJson(r);
    entry["uptime_ms"] = r.pid != 0 ? now - r.started_at_ms : 0;
    entry["rss_bytes"] = r.pid != 0 ? ResidentBytes(r.pid) : 0;
    out.push_back(std::move(entry));
  }
  return out;
}

std::vector<Slot*> SupervisorImpl::SelectSlots(const json& request, json& error) {
  std::vector<Slot*> out;
  const json target = request.value("target", json::object());
  if (target.contains("pid")) {
    const pid_t pid = target["pid"].is_number_integer() ? target["pid"].get<pid_t>() : 0;
    for (auto& slot : slots_) {
      if (slot->current && slot->current->pid == pid && pid > 0) {
        const bool start_matches =
            !target.contains("start_time") ||
            target["start_time"] == json(slot->current->start_time);
        // The recorded start time must still be the process's: the pid was not reused.
        const bool same_process = os_.StartTime(pid).value_or(0) == slot->current->start_time;
        if (start_matches && same_process) {
          out.push_back(slot.get());
        }
      }
    }
    if (out.empty()) {
      error = Reply(403, nullptr,
                    absl::StrCat("pid ", target["pid"].dump(),
                                 " is not a live process of this server; refusing to signal it"));
    }
    return out;
  }
  const std::string name = target.value("name", "");
  const std::string group = target.value("group", "");
  const bool has_index = target.contains("index");
  const int index = has_index && target["index"].is_number_integer() ? target["index"].get<int>() : -1;
  for (auto& slot : slots_) {
    const bool by_name = !name.empty() && slot->name == name && (!has_index || slot->index == index);
    const bool by_group = !group.empty() && slot->group == group;
    if (by_name || by_group) {
      out.push_back(slot.get());
    }
  }
  if (out.empty()) {
    error = Reply(name.empty() && group.empty() ? 400 : 404, nullptr, NoMatch(name, has_index, index, group));
  }
  return out;
}

std::string SupervisorImpl::NoMatch(const std::string& name, bool has_index, int index,
                                    const std::string& group) const {
  if (!group.empty()) {
    return absl::StrCat("no process or worker is in group '", group, "'");
  }
  if (name.empty()) {
    return "no target: give a pid, a name (and index) or a group";
  }
  for (const auto& slot : slots_) {
    if (slot->name == name && has_index) {
      return absl::StrCat("'", name, "' has no instance ", index);
    }
  }
  return absl::StrCat("no process or worker is named '", name, "'");
}

json SupervisorImpl::Restart(const json& request) {
  json error;
  std::vector<Slot*> slots = SelectSlots(request, error);
  if (slots.empty()) {
    return error;
  }
  return RestartSlots(slots);
}

json SupervisorImpl::RestartSlots(const std::vector<Slot*>& slots) {
  json restarted = json::array();
  for (Slot* slot : slots) {
    json entry = {{"kind", slot->kind == SlotKind::kWorker ? "worker" : "process"},
                  {"name", slot->name},
                  {"index", slot->index},
                  {"pid", slot->current ? slot->current->pid : 0}};
    if (slot->current) {
      LOG(INFO) << slot->Label() << " (pid " << slot->current->pid << "): restart requested";
      Terminate(slot->current, slot->exit_wait, slot->Label());
    } else if (!stopping_ && slot->state != SlotState::kStarting) {
      LOG(INFO) << slot->Label() << ": restart requested while " << StateName(slot->state);
      slot->backoff = {};
      SpawnCurrent(*slot);
    }
    restarted.push_back(std::move(entry));
  }
  Publish();
  return Reply(200, {{"restarted", restarted}}, "restarting");
}

// ---------------------------------------------------------------------------------------------
// Stop, registry, readiness.

void SupervisorImpl::Stop(std::function<void()> on_stopped) {
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  if (reloading_) {
    next_reload_waiters_.clear();
    FinishReload(absl::UnavailableError("the server is stopping"));
  }
  for (auto& slot : slots_) {
    slot->respawn_timer.cancel();
    slot->state = slot->current ? SlotState::kStopping : SlotState::kStopped;
    for (std::shared_ptr<Child>* extra : {&slot->replacement, &slot->next}) {
      if (*extra) {
        Terminate(*extra, slot->exit_wait, slot->Label());
        retired_.push_back(std::exchange(*extra, nullptr));
      }
    }
  }
  // Workers first: they stop accepting and drain while the custom processes still run (a
  // request may need them); then every custom process gets its OnShutdown.
  StopKind(SlotKind::kWorker);
  Publish();
  CheckStopped();
}

void SupervisorImpl::StopKind(SlotKind kind) {
  stopping_kind_ = kind;
  for (auto& slot : slots_) {
    if (slot->kind == kind && slot->current) {
      Terminate(slot->current, slot->exit_wait, slot->Label());
    }
  }
}

void SupervisorImpl::CheckStopped() {
  if (!on_stopped_) {
    return;
  }
  for (const auto& slot : slots_) {
    if (slot->current && slot->kind == SlotKind::kWorker) {
      return;
    }
  }
  if (stopping_kind_ == SlotKind::kWorker) {
    StopKind(SlotKind::kProcess);
  }
  for (const auto& slot : slots_) {
    if (slot->current) {
      return;
    }
  }
  if (retired_.empty()) {
    stopped_ = true;
    std::exchange(on_stopped_, nullptr)();
  }
}

void SupervisorImpl::CheckSettled() {
  if (!on_settled_) {
    return;
  }
  for (const auto& slot : slots_) {
    if (slot->state == SlotState::kStarting) {
      return;
    }
  }
  // Whoever hears "ready" may read the registry at once: it must already say so.
  PublishNow();
  std::exchange(on_settled_, nullptr)();
}

std::vector<SlotRecord> SupervisorImpl::Snapshot() const {
  std::vector<SlotRecord> out;
  out.reserve(slots_.size());
  for (const auto& s : slots_) {
    const Child* c = s->current.get();
    out.push_back({.kind = s->kind == SlotKind::kWorker ? "worker" : "process",
                   .name = s->name,
                   .group = s->group,
                   .index = s->index,
                   .pid = c ? c->pid : 0,
                   .start_time = c ? c->start_time : 0,
                   .started_at_ms = c ? c->started_at_ms : 0,
                   .state = StateName(s->state),
                   .restarts = s->restarts,
                   .last_exit = s->last_exit,
                   .reason = s->reason,
                   .unit = s->unit});
  }
  return out;
}

// Coalesced: many changes in one turn of the loop (a thousand slots stopping) make one write.
void SupervisorImpl::Publish() {
  if (publish_pending_ || stopped_) {
    return;
  }
  publish_pending_ = true;
  asio::post(io_, [this] {
    publish_pending_ = false;
    if (!stopped_) {
      PublishNow();
    }
  });
}

void SupervisorImpl::PublishNow() {
  if (absl::Status s = registry_.Write(Snapshot()); !s.ok()) {
    LOG(WARNING) << "pid registry not updated: " << s.message() << ", ignoring";
  }
  std::string line = StatusLine();
  if (line != status_line_ && options_.on_event) {
    status_line_ = line;
    options_.on_event({{"event", "status"}, {"line", std::move(line)}});
  }
}

// "2 workers, 3 processes running (testProcess 1201 1202, processReload 1203); 4 restarts;
// last reload ok" — what `systemctl status` shows, so a person sees the pids and what is wrong.
std::string SupervisorImpl::StatusLine() const {
  int workers = 0, processes = 0, restarts = 0;
  std::vector<std::pair<std::string, std::string>> pids;  // name -> "1201 1202", in order
  std::vector<std::string> problems;
  for (const auto& slot : slots_) {
    restarts += slot->restarts;
    const bool running = slot->state == SlotState::kRunning && slot->current;
    if (slot->kind == SlotKind::kWorker) {
      workers += running ? 1 : 0;
    } else if (running) {
      ++processes;
      if (pids.empty() || pids.back().first != slot->name) {
        pids.emplace_back(slot->name, "");
      }
      absl::StrAppend(&pids.back().second, pids.back().second.empty() ? "" : " ",
                      slot->current->pid);
    }
    if (slot->state == SlotState::kBackoff || slot->state == SlotState::kFailed) {
      problems.push_back(absl::StrCat(slot->Label(), " ", StateName(slot->state), ": ",
                                      slot->reason));
    }
  }
  std::vector<std::string> groups;
  for (const auto& [name, list] : pids) {
    groups.push_back(absl::StrCat(name, " ", list));
  }
  std::string line = absl::StrCat(workers, workers == 1 ? " worker, " : " workers, ", processes,
                                  processes == 1 ? " process" : " processes", " running");
  if (!groups.empty()) {
    absl::StrAppend(&line, " (", absl::StrJoin(groups, ", "), ")");
  }
  absl::StrAppend(&line, "; ", restarts, restarts == 1 ? " restart" : " restarts");
  if (!last_reload_.empty()) {
    absl::StrAppend(&line, "; last reload ", last_reload_);
  }
  for (const std::string& p : problems) {
    absl::StrAppend(&line, "; ", p);
  }
  return line;
}

}  // namespace

std::unique_ptr<Supervisor> NewSupervisor(asio::io_context& io, Os& os, SupervisorOptions options,
                                          Registry& registry) {
  return std::make_unique<SupervisorImpl>(io, os, std::move(options), registry);
}

}  // namespace sprocket
