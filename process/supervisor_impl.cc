// The manager's supervision logic (see supervisor.h). Slots are never destroyed while the
// supervisor lives, so event-loop callbacks hold a Slot* plus the slot's generation: a callback
// for a process that has since been replaced sees another generation and does nothing.
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <optional>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "process/backoff.h"
#include "process/channel.h"
#include "process/child_runtime.h"
#include "process/exit_codes.h"
#include "process/supervisor.h"

namespace sprocket {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

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

struct Slot {
  Slot(asio::io_context& io, const ProcessConfig& c, int i)
      : config(c), index(i), respawn_timer(io), kill_timer(io) {}

  std::string Label() const { return absl::StrCat("process ", config.name, " ", index); }

  const ProcessConfig& config;
  const int index;
  SlotState state = SlotState::kStarting;
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  Clock::time_point started;
  std::uint64_t generation = 0;
  std::optional<asio::posix::stream_descriptor> pidfd;
  std::optional<asio::posix::stream_descriptor> channel;
  FrameDecoder decoder;
  std::array<char, 4096> buffer{};
  // The child said it is stopping on request: its clean exit is a hot restart, not a crash.
  bool deliberate = false;
  std::string load_error;
  int restarts = 0;
  std::string last_exit;
  std::string reason;
  BackoffState backoff;
  asio::steady_timer respawn_timer;
  asio::steady_timer kill_timer;
};

class SupervisorImpl final : public Supervisor {
 public:
  SupervisorImpl(asio::io_context& io, Os& os, const std::vector<ProcessConfig>& processes,
                 Registry& registry)
      : io_(io), os_(os), registry_(registry), manager_pid_(::getpid()) {
    for (const ProcessConfig& config : processes) {
      for (int i = 0; i < config.count; ++i) {
        slots_.push_back(std::make_unique<Slot>(io, config, i));
      }
    }
  }

  // sprocket::Supervisor
  void Start(std::function<void()> on_settled) override;
  void Stop(std::function<void()> on_stopped) override;
  std::vector<SlotRecord> Snapshot() const override;

 private:
  void Spawn(Slot& slot);
  void WatchExit(Slot& slot);
  void ReadChannel(Slot& slot);
  void HandleFrames(Slot& slot);
  void DrainChannel(Slot& slot);
  void OnChildExit(Slot& slot);
  void RecordExit(Slot& slot, const ExitStatus& status);
  void ScheduleRespawn(Slot& slot, std::chrono::milliseconds uptime, bool clean);
  void MarkStopped(Slot& slot);
  void Publish();
  void CheckSettled();
  void CheckStopped();

  asio::io_context& io_;
  Os& os_;
  Registry& registry_;
  const pid_t manager_pid_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::function<void()> on_settled_;
  std::function<void()> on_stopped_;
  bool stopping_ = false;
};

void SupervisorImpl::Start(std::function<void()> on_settled) {
  on_settled_ = std::move(on_settled);
  for (auto& slot : slots_) {
    Spawn(*slot);
  }
  Publish();
  CheckSettled();
}

void SupervisorImpl::Spawn(Slot& slot) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
    PLOG(ERROR) << slot.Label() << ": socketpair failed, retrying after backoff";
    ScheduleRespawn(slot, std::chrono::milliseconds(0), /*clean=*/false);
    return;
  }
  UniqueFd ours(pair[0]);
  UniqueFd theirs(pair[1]);
  absl::StatusOr<pid_t> pid = os_.Fork();
  if (!pid.ok()) {
    LOG(ERROR) << slot.Label() << ": " << pid.status().message() << ", retrying after backoff";
    ScheduleRespawn(slot, std::chrono::milliseconds(0), /*clean=*/false);
    return;
  }
  if (*pid == 0) {
    ours.Reset();
    RunProcessChild(manager_pid_, slot.config, slot.index, std::move(theirs));
  }
  theirs.Reset();
  // pidfd_open on our own unreaped child cannot fail but for fd exhaustion: a broken manager.
  absl::StatusOr<UniqueFd> pidfd = os_.PidfdOpen(*pid);
  CHECK(pidfd.ok()) << pidfd.status();
  slot.pid = *pid;
  slot.start_time = os_.StartTime(*pid).value_or(0);
  slot.started = Clock::now();
  slot.state = SlotState::kStarting;
  slot.deliberate = false;
  slot.load_error.clear();
  slot.decoder = FrameDecoder();
  ++slot.generation;
  slot.pidfd.emplace(io_, pidfd->Release());
  slot.channel.emplace(io_, ours.Release());
  WatchExit(slot);
  ReadChannel(slot);
}

void SupervisorImpl::WatchExit(Slot& slot) {
  slot.pidfd->async_wait(asio::posix::descriptor_base::wait_read,
                         [this, &slot, gen = slot.generation](boost::system::error_code ec) {
                           if (!ec && gen == slot.generation) {
                             OnChildExit(slot);
                           }
                         });
}

void SupervisorImpl::ReadChannel(Slot& slot) {
  slot.channel->async_read_some(
      asio::buffer(slot.buffer),
      [this, &slot, gen = slot.generation](boost::system::error_code ec, std::size_t n) {
        if (ec || gen != slot.generation) {
          return;  // EOF or error: the pidfd reports the exit.
        }
        slot.decoder.Append(std::string_view(slot.buffer.data(), n));
        HandleFrames(slot);
        ReadChannel(slot);
      });
}

void SupervisorImpl::HandleFrames(Slot& slot) {
  while (std::optional<Frame> frame = slot.decoder.Next()) {
    switch (frame->type) {
      case FrameType::kReady:
        slot.state = SlotState::kRunning;
        slot.reason.clear();
        Publish();
        CheckSettled();
        break;
      case FrameType::kLoadError:
        slot.load_error = std::move(frame->payload);
        break;
      case FrameType::kStopping:
        slot.deliberate = true;
        break;
      case FrameType::kMessage:
        break;  // children do not send messages to the manager
    }
  }
}

// A child may write its last frame and exit in the same instant; read what is left before the
// exit is judged, so a load error or a stop acknowledgement is never missed.
void SupervisorImpl::DrainChannel(Slot& slot) {
  const int fd = slot.channel->native_handle();
  for (;;) {
    const ssize_t n = ::recv(fd, slot.buffer.data(), slot.buffer.size(), MSG_DONTWAIT);
    if (n <= 0) {
      break;
    }
    slot.decoder.Append(std::string_view(slot.buffer.data(), static_cast<std::size_t>(n)));
  }
  HandleFrames(slot);
}

void SupervisorImpl::OnChildExit(Slot& slot) {
  absl::StatusOr<ExitStatus> status = os_.WaitPidfd(slot.pidfd->native_handle());
  CHECK(status.ok()) << slot.Label() << ": " << status.status();
  DrainChannel(slot);
  const auto uptime =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - slot.started);
  const bool clean = slot.deliberate && !status->signaled && status->code == kExitClean;
  RecordExit(slot, *status);
  ++slot.generation;
  slot.pidfd.reset();
  slot.channel.reset();
  slot.pid = 0;
  slot.start_time = 0;
  slot.kill_timer.cancel();
  if (stopping_ || slot.state == SlotState::kStopping) {
    MarkStopped(slot);
    return;
  }
  ScheduleRespawn(slot, uptime, clean);
}

void SupervisorImpl::RecordExit(Slot& slot, const ExitStatus& status) {
  slot.last_exit = DescribeExit(status);
  if (!slot.load_error.empty()) {
    slot.reason = slot.load_error;
  } else if (!status.signaled && status.code != kExitClean) {
    const std::string_view name = ExitCodeName(status.code);
    slot.reason = name.empty() ? slot.last_exit : absl::StrCat(slot.last_exit, " (", std::string(name), ")");
  } else if (status.signaled) {
    slot.reason = absl::StrCat("killed by ", slot.last_exit);
  } else {
    slot.reason.clear();
  }
}

void SupervisorImpl::ScheduleRespawn(Slot& slot, std::chrono::milliseconds uptime, bool clean) {
  const RespawnDecision decision = DecideRespawn(slot.config.restart, slot.backoff, uptime, clean);
  if (decision.give_up) {
    slot.state = SlotState::kFailed;
    LOG(ERROR) << slot.Label() << ": gave up after " << slot.backoff.young_failures
               << " young failures; last: " << slot.reason;
    Publish();
    CheckSettled();
    return;
  }
  ++slot.restarts;
  if (decision.delay.count() == 0) {
    LOG(INFO) << slot.Label() << " ended (" << slot.last_exit << "), respawning";
    Spawn(slot);
    Publish();
    return;
  }
  slot.state = SlotState::kBackoff;
  LOG(WARNING) << slot.Label() << " died young (" << slot.reason << "); respawning in "
               << decision.delay.count() << " ms";
  slot.respawn_timer.expires_after(decision.delay);
  slot.respawn_timer.async_wait([this, &slot](boost::system::error_code ec) {
    if (!ec && slot.state == SlotState::kBackoff && !stopping_) {
      Spawn(slot);
      Publish();
    }
  });
  Publish();
  CheckSettled();
}

void SupervisorImpl::Stop(std::function<void()> on_stopped) {
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  for (auto& slot : slots_) {
    slot->respawn_timer.cancel();
    if (slot->pid == 0) {
      slot->state = SlotState::kStopped;
      continue;
    }
    slot->state = SlotState::kStopping;
    (void)os_.Kill(slot->pid, SIGTERM);
    // The child bounds its own OnShutdown by max_exit_wait; this is the backstop if it cannot.
    slot->kill_timer.expires_after(slot->config.max_exit_wait + std::chrono::milliseconds(500));
    slot->kill_timer.async_wait([this, s = slot.get(), gen = slot->generation](auto ec) {
      if (!ec && gen == s->generation && s->pid != 0) {
        LOG(WARNING) << s->Label() << " (pid " << s->pid << ") ignored SIGTERM; sending SIGKILL";
        (void)os_.Kill(s->pid, SIGKILL);
      }
    });
  }
  Publish();
  CheckStopped();
}

void SupervisorImpl::MarkStopped(Slot& slot) {
  slot.state = SlotState::kStopped;
  LOG(INFO) << slot.Label() << " stopped (" << slot.last_exit << ")";
  Publish();
  CheckStopped();
}

void SupervisorImpl::CheckStopped() {
  for (const auto& slot : slots_) {
    if (slot->state != SlotState::kStopped) {
      return;
    }
  }
  if (on_stopped_) {
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
  std::exchange(on_settled_, nullptr)();
}

std::vector<SlotRecord> SupervisorImpl::Snapshot() const {
  std::vector<SlotRecord> out;
  out.reserve(slots_.size());
  for (const auto& s : slots_) {
    out.push_back({.kind = "process",
                   .name = s->config.name,
                   .group = s->config.group,
                   .index = s->index,
                   .pid = s->pid,
                   .start_time = s->start_time,
                   .state = StateName(s->state),
                   .restarts = s->restarts,
                   .last_exit = s->last_exit,
                   .reason = s->reason,
                   .unit = s->config.unit});
  }
  return out;
}

void SupervisorImpl::Publish() {
  if (absl::Status s = registry_.Write(Snapshot()); !s.ok()) {
    LOG(WARNING) << "pid registry not updated: " << s.message() << ", ignoring";
  }
}

}  // namespace

std::unique_ptr<Supervisor> NewSupervisor(asio::io_context& io, Os& os,
                                          const std::vector<ProcessConfig>& processes,
                                          Registry& registry) {
  return std::make_unique<SupervisorImpl>(io, os, processes, registry);
}

}  // namespace sprocket
