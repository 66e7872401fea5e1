#include "process/child_runtime.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <array>
#include <deque>
#include <map>
#include <memory>
#include <stdexcept>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "process/channel.h"
#include "process/exit_codes.h"
#include "process/fork_setup.h"
#include "process/process.h"
#include "process/process_title.h"
#include "process/signal_reader.h"
#include "process/unit_loader.h"

namespace sprocket {

namespace asio = boost::asio;

class ChildRuntime final : public internal::ProcessContext, public ProcessPipe {
 public:
  ChildRuntime(const ProcessConfig& config, int index, UniqueFd channel, UniqueFd mailbox)
      : config_(config),
        index_(index),
        channel_fd_(std::move(channel)),
        mailbox_fd_(std::move(mailbox)) {}

  int Main(bool held);

  // internal::ProcessContext
  const std::string& Name() const override { return config_.name; }
  int Index() const override { return index_; }
  const nlohmann::json& Arg() const override { return config_.arg; }
  asio::io_context& EventLoop() override { return io_; }
  TimerId AddTimer(std::chrono::milliseconds period, bool repeat,
                   std::function<void()> fn) override;
  bool ClearTimer(TimerId id) override;

  // sprocket::ProcessPipe
  std::optional<std::string> Read() override;

 private:
  struct Timer {
    explicit Timer(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    std::chrono::milliseconds period;
    bool repeat;
    std::shared_ptr<std::function<void()>> fn;
  };

  bool OpenSignalFd();
  bool WaitForStart();
  absl::StatusOr<UnitObject<Process>> Load(bool held, bool& stopped);
  void OnSignal(int sig);
  void ReadChannel();
  void OnChannelBytes(std::size_t n);
  void ScheduleAck();
  void SendAck();
  void OnTimer(TimerId id);
  void ArmTimer(TimerId id, Timer& timer);
  void Stop(const char* why);
  void Guard(const std::function<void()>& fn);

  const ProcessConfig& config_;
  const int index_;
  // To the manager: lifecycle frames (ready, load error, stopping, start).
  UniqueFd channel_fd_;
  // From the master: messages for OnPipeReadable, answered with acknowledgements.
  UniqueFd mailbox_fd_;
  asio::io_context io_;
  std::unique_ptr<SignalReader> signals_;
  std::optional<asio::posix::stream_descriptor> channel_;
  std::array<char, 64 * 1024> read_buffer_{};
  FrameDecoder decoder_;
  std::deque<std::string> inbox_;
  std::size_t unacked_ = 0;
  bool ack_pending_ = false;
  asio::steady_timer ack_timer_{io_};
  std::map<TimerId, std::unique_ptr<Timer>> timers_;
  TimerId next_timer_ = 1;
  Process* process_ = nullptr;
  bool stopping_ = false;
};

// Loads the unit and builds the instance. A child forked ahead loads the unit at once (the
// code on disk after the kill) but builds the instance — user code — only after kStart, when
// its predecessor is gone. `stopped` is set when it was told to stop before that.
absl::StatusOr<UnitObject<Process>> ChildRuntime::Load(bool held, bool& stopped) {
  absl::StatusOr<std::shared_ptr<UnitHandle>> unit = UnitHandle::Open(config_.unit);
  if (!unit.ok()) {
    return unit.status();
  }
  absl::StatusOr<const sprocket_unit_class*> cls =
      (*unit)->FindClass(SPROCKET_UNIT_PROCESS, config_.class_name);
  if (!cls.ok()) {
    return cls.status();
  }
  if (held && !WaitForStart()) {
    stopped = true;
    return absl::CancelledError("stopped before it was needed");
  }
  absl::StatusOr<void*> instance = CreateUnitInstance(**unit, **cls);
  if (!instance.ok()) {
    return instance.status();
  }
  return UnitObject<Process>(*std::move(unit), *cls, *instance);
}

int ChildRuntime::Main(bool held) {
  bool stopped = false;
  absl::StatusOr<UnitObject<Process>> object = Load(held, stopped);
  if (stopped) {
    return kExitClean;
  }
  if (!OpenSignalFd()) {
    return kExitChildSetup;
  }
  if (!object.ok()) {
    LOG(ERROR) << "process " << config_.name << " " << index_ << ": " << object.status().message();
    // Best effort: the exit code alone still tells the manager what kind of failure it was.
    (void)WriteAll(channel_fd_.get(),
                   EncodeFrame(FrameType::kLoadError, std::string(object.status().message())));
    return UnitLoadExitCode(object.status());
  }
  process_ = object->get();
  process_->context_ = this;
  (void)WriteAll(channel_fd_.get(), EncodeFrame(FrameType::kReady, ""));
  channel_.emplace(io_, mailbox_fd_.Release());
  ReadChannel();
  Guard([this] { process_->Run(config_.arg); });
  io_.run();
  // User callbacks (timer functions) live in the unit: drop them before the instance goes.
  timers_.clear();
  // The instance is destroyed (its destructor runs) but the unit is not unloaded: _exit follows,
  // and a hot restart's successor is waiting for this process to be gone.
  object->KeepUnitLoaded();
  return kExitClean;
}

bool ChildRuntime::OpenSignalFd() {
  absl::StatusOr<std::unique_ptr<SignalReader>> reader =
      SignalReader::Open(io_, LoopSignals(), [this](int sig) { OnSignal(sig); });
  if (!reader.ok()) {
    LOG(ERROR) << "process " << config_.name << " " << index_ << ": " << reader.status();
    return false;
  }
  signals_ = *std::move(reader);
  return true;
}

// Blocks until kStart (true) or until SIGTERM/SIGINT or the manager's end (false). Bytes that
// follow kStart stay in the decoder for the event loop.
bool ChildRuntime::WaitForStart() {
  const sigset_t set = LoopSignals();
  UniqueFd sfd(::signalfd(-1, &set, SFD_CLOEXEC));
  for (;;) {
    pollfd fds[2] = {{channel_fd_.get(), POLLIN, 0}, {sfd.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
      return false;
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(sfd.get(), &info, sizeof(info)) == sizeof(info) &&
          (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT)) {
        return false;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP)) {
      char buf[4096];
      const ssize_t n = ::read(channel_fd_.get(), buf, sizeof(buf));
      if (n <= 0) {
        return false;
      }
      decoder_.Append(std::string_view(buf, static_cast<std::size_t>(n)));
      if (std::optional<Frame> frame = decoder_.Next(); frame && frame->type == FrameType::kStart) {
        return true;
      }
    }
  }
}

void ChildRuntime::OnSignal(int sig) {
  if (sig == SIGTERM || sig == SIGINT) {
    Stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return;
  }
  LOG(INFO) << "process " << config_.name << " " << index_ << ": ignoring signal " << sig;
}

void ChildRuntime::ReadChannel() {
  channel_->async_read_some(asio::buffer(read_buffer_),
                            [this](boost::system::error_code ec, std::size_t n) {
                              if (ec == asio::error::operation_aborted) {
                                return;
                              }
                              if (ec) {
                                // The master is gone or closed our mailbox: the server is going.
                                Stop("mailbox closed");
                                return;
                              }
                              OnChannelBytes(n);
                            });
}

void ChildRuntime::OnChannelBytes(std::size_t n) {
  decoder_.Append(std::string_view(read_buffer_.data(), n));
  while (std::optional<Frame> frame = decoder_.Next()) {
    if (frame->type == FrameType::kMessage && !stopping_) {
      inbox_.push_back(std::move(frame->payload));
    }
  }
  if (!decoder_.status().ok()) {
    LOG(ERROR) << "process " << config_.name << " " << index_
               << ": corrupt manager channel: " << decoder_.status().message();
    Stop("corrupt manager channel");
    return;
  }
  if (!inbox_.empty()) {
    const std::size_t delivered = inbox_.size();
    Guard([this] { process_->OnPipeReadable(*this); });
    if (!inbox_.empty()) {
      LOG(WARNING) << "process " << config_.name << " " << index_ << ": " << inbox_.size()
                   << " message(s) left unread by OnPipeReadable, dropped";
      inbox_.clear();
    }
    // Only now may the manager forget them: had OnPipeReadable not returned, the next instance
    // would get them again.
    unacked_ += delivered;
    ScheduleAck();
  }
  if (!stopping_) {
    ReadChannel();
  }
}

// Acknowledgements are coalesced over a few milliseconds: under a stream of messages one ack
// covers many, instead of waking the manager once more per message. A crash in that window only
// means the next instance gets those messages again (delivery is at-least-once anyway).
void ChildRuntime::ScheduleAck() {
  if (ack_pending_) {
    return;
  }
  ack_pending_ = true;
  ack_timer_.expires_after(std::chrono::milliseconds(5));
  ack_timer_.async_wait([this](boost::system::error_code ec) {
    ack_pending_ = false;
    if (!ec) {
      SendAck();
    }
  });
}

void ChildRuntime::SendAck() {
  if (unacked_ > 0 && channel_) {
    (void)WriteAll(channel_->native_handle(),
                   EncodeFrame(FrameType::kAck, std::to_string(std::exchange(unacked_, 0))));
  }
}

std::optional<std::string> ChildRuntime::Read() {
  if (inbox_.empty()) {
    return std::nullopt;
  }
  std::string message = std::move(inbox_.front());
  inbox_.pop_front();
  return message;
}

TimerId ChildRuntime::AddTimer(std::chrono::milliseconds period, bool repeat,
                               std::function<void()> fn) {
  const TimerId id = next_timer_++;
  auto timer = std::make_unique<Timer>(io_);
  timer->period = std::max(period, std::chrono::milliseconds(repeat ? 1 : 0));
  timer->repeat = repeat;
  timer->fn = std::make_shared<std::function<void()>>(std::move(fn));
  timer->timer.expires_after(timer->period);
  ArmTimer(id, *timer);
  timers_.emplace(id, std::move(timer));
  return id;
}

void ChildRuntime::ArmTimer(TimerId id, Timer& timer) {
  timer.timer.async_wait([this, id](boost::system::error_code ec) {
    if (!ec) {
      OnTimer(id);
    }
  });
}

void ChildRuntime::OnTimer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end() || stopping_) {
    return;
  }
  // Hold the function: the callback may Clear() its own timer while it runs.
  std::shared_ptr<std::function<void()>> fn = it->second->fn;
  if (it->second->repeat) {
    // From the scheduled time, so a 3 s loop does not drift by the callback's duration.
    it->second->timer.expires_at(it->second->timer.expiry() + it->second->period);
    ArmTimer(id, *it->second);
  } else {
    timers_.erase(it);
  }
  Guard(*fn);
}

bool ChildRuntime::ClearTimer(TimerId id) { return timers_.erase(id) > 0; }

void ChildRuntime::Stop(const char* why) {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  LOG(INFO) << "process " << config_.name << " " << index_ << ": stopping (" << why << ")";
  // Messages OnPipeReadable already handled are done: acknowledge them before leaving.
  ack_timer_.cancel();
  SendAck();
  // Tells the manager this exit is deliberate, so it respawns at once without backoff, and the
  // master to queue messages for the next instance instead.
  (void)WriteAll(channel_fd_.get(), EncodeFrame(FrameType::kStopping, ""));
  if (channel_) {
    (void)WriteAll(channel_->native_handle(), EncodeFrame(FrameType::kStopping, ""));
  }
  // OnShutdown is user code: if it hangs, the deadline ends the process on time.
  ArmExitDeadline(config_.max_exit_wait);
  Guard([this] { process_->OnShutdown(); });
  timers_.clear();
  signals_->Close();
  io_.stop();
}

void ChildRuntime::Guard(const std::function<void()>& fn) {
  try {
    try {
      fn();
    } catch (const std::exception& e) {
      process_->OnException(e);
    } catch (...) {
      process_->OnException(std::runtime_error("a non-standard exception was thrown"));
    }
  } catch (const std::exception& e) {
    LOG(ERROR) << "process " << config_.name << " " << index_
               << ": OnException threw: " << e.what();
    google::FlushLogFiles(google::GLOG_INFO);
    ::_exit(kExitException);
  }
}

void RunProcessChild(pid_t manager, const ProcessConfig& config, int index, UniqueFd channel,
                     UniqueFd mailbox, bool held) {
  const int keep[] = {channel.get(), mailbox.get()};
  PrepareForkedChild(manager, keep);
  SetProcessTitle(absl::StrCat("sprocket: process ", config.name, " ", index));
  int code;
  {
    ChildRuntime runtime(config, index, std::move(channel), std::move(mailbox));
    code = runtime.Main(held);
  }
  google::FlushLogFiles(google::GLOG_INFO);
  ::_exit(code);
}

}  // namespace sprocket

