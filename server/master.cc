#include "server/master.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <glog/logging.h>

#include "process/fork_setup.h"
#include "process/os.h"
#include "process/process_title.h"
#include "absl/strings/str_cat.h"
#include "server/listen.h"
#include "server/manager.h"

namespace sprocket {

namespace asio = boost::asio;

Master::Master(const ServerConfig& config, RunDirLock lock, std::vector<UniqueFd> listen_fds,
               Options options)
    : config_(config),
      lock_(std::move(lock)),
      options_(options),
      mailboxes_(io_, config.processes),
      listen_fds_(std::move(listen_fds)),
      respawn_timer_(io_),
      kill_timer_(io_),
      watchdog_timer_(io_) {}

int Master::Run() {
  SetProcessTitle("sprocket: master");
  absl::StatusOr<std::unique_ptr<SignalReader>> signals =
      SignalReader::Open(io_, LoopSignals(), [this](int sig) { OnSignal(sig); });
  if (!signals.ok()) {
    LOG(ERROR) << "master: " << signals.status();
    return 1;
  }
  signals_ = *std::move(signals);
  absl::StatusOr<std::unique_ptr<ControlApi>> api = ControlApi::Start(
      io_, *this, absl::StrCat(lock_.dir(), "/", kControlSocket), options_.system_bus);
  if (!api.ok()) {
    LOG(ERROR) << "master: " << api.status().message();
    return 1;
  }
  control_api_ = *std::move(api);
  std::string listening;
  for (const UniqueFd& fd : listen_fds_) {
    listening += " http://" + SocketAddress(fd.get());
  }
  LOG(INFO) << "sprocket master " << ::getpid() << " starting " << config_.processes.size()
            << " process registration(s)"
            << (listening.empty() ? "" : ", HTTP on" + listening) << "; pid registry: "
            << lock_.dir() << "/" << kRegistryJson << " and " << lock_.dir() << "/NAME.INDEX.pid";
  SpawnManager();
  StartWatchdog();
  io_.run();
  return exit_code_;
}

void Master::SpawnManager() {
  int pair[2];
  PCHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) << "socketpair";
  UniqueFd ours(pair[0]);
  UniqueFd theirs(pair[1]);
  std::vector<int> listen_fds;
  for (const UniqueFd& fd : listen_fds_) {
    listen_fds.push_back(fd.get());
  }
  const pid_t self = ::getpid();
  absl::StatusOr<pid_t> pid = RealOs().Fork();
  CHECK(pid.ok()) << pid.status();
  if (*pid == 0) {
    ours.Reset();
    RunManager(self, config_, lock_.dir(), std::move(theirs), listen_fds);
  }
  manager_ = *pid;
  manager_started_ = std::chrono::steady_clock::now();
  absl::StatusOr<UniqueFd> pidfd = RealOs().PidfdOpen(manager_);
  CHECK(pidfd.ok()) << pidfd.status();
  manager_pidfd_.emplace(io_, pidfd->Release());
  manager_channel_ = FrameChannel::Create(io_, std::move(ours));
  manager_channel_->Start([this](Frame frame) { OnManagerFrame(std::move(frame)); },
                          [](const absl::Status&) {});  // the pidfd reports the exit
  LOG(INFO) << "master: manager pid " << manager_;
  WatchManager();
}

void Master::WatchManager() {
  manager_pidfd_->async_wait(asio::posix::descriptor_base::wait_read,
                             [this](boost::system::error_code ec) {
                               if (!ec) {
                                 OnManagerExit();
                               }
                             });
}

void Master::OnManagerFrame(Frame frame) {
  if (frame.type == FrameType::kReady && !ready_once_) {
    ready_once_ = true;
    LOG(INFO) << "sprocket ready: every process started; registry " << lock_.dir() << "/"
              << kRegistryJson;
    notifier_.Send("READY=1\nSTATUS=" + status_line_);
    return;
  }
  if (frame.type == FrameType::kEvent) {
    OnManagerEvent(nlohmann::json::parse(frame.payload, nullptr, false));
    return;
  }
  if (frame.type == FrameType::kRequest) {
    OnManagerRequest(nlohmann::json::parse(frame.payload, nullptr, false));
    return;
  }
  if (frame.type != FrameType::kResponse) {
    return;
  }
  nlohmann::json reply = nlohmann::json::parse(frame.payload, nullptr, false);
  const std::uint64_t id = reply.is_object() ? reply.value("id", std::uint64_t{0}) : 0;
  auto it = pending_.find(id);
  if (it != pending_.end()) {
    auto done = std::move(it->second);
    pending_.erase(it);
    done(std::move(reply));
  }
}

void Master::OnManagerEvent(const nlohmann::json& event) {
  if (!event.is_object()) {
    return;
  }
  const std::string name = event.value("event", "");
  if (name == "mailbox") {
    // The descriptor came with this very frame.
    mailboxes_.Attach(event.value("name", ""), event.value("index", 0), event.value("pid", 0),
                      manager_channel_->TakeFd());
    return;
  }
  if (name == "exited" && event.value("kind", "") == "process") {
    mailboxes_.OnExited(event.value("name", ""), event.value("index", 0), event.value("pid", 0),
                        event.value("state", ""));
  }
  if (name == "status") {
    status_line_ = event.value("line", status_line_);
    notifier_.Send("STATUS=" + status_line_);
  } else if (name == "reload_finished") {
    control_api_->EmitReloadFinished(event.value("ok", false), event.value("reason", ""));
  } else {
    control_api_->EmitProcessEvent(event);
  }
}

// The manager asks only what is the master's: a worker's "send".
void Master::OnManagerRequest(const nlohmann::json& request) {
  if (!request.is_object()) {
    return;
  }
  nlohmann::json reply =
      request.value("op", "") == "send"
          ? mailboxes_.Send(request.value("target", nlohmann::json::object()),
                            request.value("message", std::string()))
          : nlohmann::json{{"code", 400}, {"result", nullptr}, {"msg", "unknown request"}};
  reply["id"] = request.value("id", nlohmann::json());
  manager_channel_->Send(FrameType::kResponse, reply.dump());
}

void Master::Call(nlohmann::json request, std::function<void(nlohmann::json)> done) {
  if (request.value("op", "") == "send") {
    done(mailboxes_.Send(request.value("target", nlohmann::json::object()),
                         request.value("message", std::string())));
    return;
  }
  if (request.value("op", "") == "reload" && manager_channel_ && manager_ != 0) {
    // Every reload, from SIGHUP or the API, is announced to systemd and closed with READY=1.
    if (reloads_in_flight_++ == 0) {
      notifier_.SendReloading();
    }
    done = [this, done = std::move(done)](nlohmann::json reply) {
      OnReloadDone(reply);
      done(std::move(reply));
    };
  }
  if (!manager_channel_ || manager_ == 0) {
    done({{"code", 503}, {"result", nullptr}, {"msg", "the manager is not running"}});
    return;
  }
  const std::uint64_t id = next_call_id_++;
  request["id"] = id;
  pending_.emplace(id, std::move(done));
  manager_channel_->Send(FrameType::kRequest, request.dump());
}

void Master::FailPendingCalls(const std::string& why) {
  for (auto& [id, done] : std::exchange(pending_, {})) {
    done({{"code", 503}, {"result", nullptr}, {"msg", why}});
  }
}

void Master::Reload() {
  LOG(INFO) << "master: reloading";
  Call({{"op", "reload"}}, [](nlohmann::json) {});
}

void Master::OnReloadDone(const nlohmann::json& reply) {
  if (reply.value("code", 500) == 200) {
    LOG(INFO) << "master: reload finished";
  } else {
    LOG(ERROR) << "master: " << reply.value("msg", std::string("reload failed"));
  }
  if (--reloads_in_flight_ == 0) {
    notifier_.Send("READY=1\nSTATUS=" + status_line_);
  }
}

void Master::StartWatchdog() {
  std::optional<std::chrono::microseconds> period = notifier_.WatchdogPeriod();
  if (!period) {
    return;
  }
  watchdog_period_ = *period;
  LOG(INFO) << "master: watchdog every " << period->count() / 2 << " us while the manager answers";
  OnWatchdogTick();
}

// Feeds systemd's watchdog only if the manager answered the previous heartbeat: a wedged
// manager (stopped, deadlocked) then lets the watchdog fire and Restart= recover the service.
void Master::OnWatchdogTick() {
  if (heartbeat_answered_) {
    notifier_.Send("WATCHDOG=1");
  } else {
    LOG(WARNING) << "master: the manager missed a heartbeat; not feeding the watchdog";
  }
  heartbeat_answered_ = false;
  Call({{"op", "ping"}}, [this](nlohmann::json reply) {
    heartbeat_answered_ = reply.value("code", 500) == 200;
  });
  watchdog_timer_.expires_after(watchdog_period_ / 2);
  watchdog_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopping_) {
      OnWatchdogTick();
    }
  });
}

void Master::OnManagerExit() {
  absl::StatusOr<ExitStatus> status = RealOs().WaitPidfd(manager_pidfd_->native_handle());
  if (absl::IsUnavailable(status.status())) {
    WatchManager();  // not reapable yet (see Os::WaitPidfd)
    return;
  }
  CHECK(status.ok()) << status.status();
  manager_pidfd_.reset();
  manager_channel_->Close();
  manager_channel_.reset();
  manager_ = 0;
  FailPendingCalls("the manager exited before answering");
  if (stopping_) {
    Finish();
    return;
  }
  // The manager never exits on its own: it crashed or was killed. Its children died with it
  // (PR_SET_PDEATHSIG); a new manager starts every slot again.
  const auto uptime = std::chrono::steady_clock::now() - manager_started_;
  manager_backoff_ = uptime > std::chrono::seconds(10)
                         ? std::chrono::milliseconds(0)
                         : std::clamp(manager_backoff_ * 2, std::chrono::milliseconds(100),
                                      std::chrono::milliseconds(10000));
  LOG(ERROR) << "master: manager ended unexpectedly (" << DescribeExit(*status)
             << "); starting a new one in " << manager_backoff_.count() << " ms";
  respawn_timer_.expires_after(manager_backoff_);
  respawn_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopping_) {
      SpawnManager();
    }
  });
}

void Master::OnSignal(int sig) {
  if (sig == SIGTERM || sig == SIGINT) {
    LOG(INFO) << "master: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ", stopping";
    Stop();
    return;
  }
  if (sig == SIGHUP && !stopping_) {
    Reload();
    return;
  }
  LOG(INFO) << "master: ignoring signal " << sig;
}

std::chrono::milliseconds Master::StopTimeout() const {
  std::chrono::milliseconds longest{0};
  for (const ProcessConfig& p : config_.processes) {
    longest = std::max(longest, p.max_exit_wait);
  }
  // Workers drain first, then processes run OnShutdown; the manager SIGKILLs each phase's
  // stragglers 0.5 s after its bound. Allow for both phases, then stop waiting.
  return config_.http.max_wait_time + longest + std::chrono::seconds(2);
}

void Master::Stop() {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  mailboxes_.Close();
  notifier_.Send("STOPPING=1\nSTATUS=stopping");
  watchdog_timer_.cancel();
  respawn_timer_.cancel();
  if (manager_ == 0) {
    Finish();
    return;
  }
  (void)RealOs().Kill(manager_, SIGTERM);
  kill_timer_.expires_after(StopTimeout());
  kill_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && manager_ != 0) {
      LOG(ERROR) << "master: manager did not stop in time; killing it and its children";
      exit_code_ = 1;
      (void)RealOs().Kill(manager_, SIGKILL);
    }
  });
}

void Master::Finish() {
  kill_timer_.cancel();
  // Whatever the manager could not remove (it was killed) goes now; master.pid goes with lock_.
  RemoveRegistryFiles(lock_.dir());
  control_api_.reset();
  signals_->Close();
  io_.stop();
  LOG(INFO) << "sprocket stopped";
}

}  // namespace sprocket
