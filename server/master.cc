#include "server/master.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include <glog/logging.h>

#include "process/fork_setup.h"
#include "process/os.h"
#include "process/process_title.h"
#include "server/manager.h"

namespace sprocket {

namespace asio = boost::asio;

Master::Master(const ServerConfig& config, RunDirLock lock)
    : config_(config), lock_(std::move(lock)), respawn_timer_(io_), kill_timer_(io_) {}

int Master::Run() {
  SetProcessTitle("sprocket: master");
  absl::StatusOr<std::unique_ptr<SignalReader>> signals =
      SignalReader::Open(io_, LoopSignals(), [this](int sig) { OnSignal(sig); });
  if (!signals.ok()) {
    LOG(ERROR) << "master: " << signals.status();
    return 1;
  }
  signals_ = *std::move(signals);
  LOG(INFO) << "sprocket master " << ::getpid() << " starting " << config_.processes.size()
            << " process registration(s); pid registry: " << lock_.dir() << "/"
            << kRegistryJson << " and " << lock_.dir() << "/NAME.INDEX.pid";
  SpawnManager();
  io_.run();
  return exit_code_;
}

void Master::SpawnManager() {
  int pipe[2];
  PCHECK(::pipe2(pipe, O_CLOEXEC) == 0) << "pipe2";
  UniqueFd read_end(pipe[0]);
  UniqueFd write_end(pipe[1]);
  const pid_t self = ::getpid();
  absl::StatusOr<pid_t> pid = RealOs().Fork();
  CHECK(pid.ok()) << pid.status();
  if (*pid == 0) {
    read_end.Reset();
    RunManager(self, config_, lock_.dir(), std::move(write_end));
  }
  manager_ = *pid;
  manager_started_ = std::chrono::steady_clock::now();
  absl::StatusOr<UniqueFd> pidfd = RealOs().PidfdOpen(manager_);
  CHECK(pidfd.ok()) << pidfd.status();
  manager_pidfd_.emplace(io_, pidfd->Release());
  ready_.emplace(io_, read_end.Release());
  LOG(INFO) << "master: manager pid " << manager_;
  WatchManager();
  ReadReady();
}

void Master::WatchManager() {
  manager_pidfd_->async_wait(asio::posix::descriptor_base::wait_read,
                             [this](boost::system::error_code ec) {
                               if (!ec) {
                                 OnManagerExit();
                               }
                             });
}

void Master::ReadReady() {
  ready_->async_read_some(asio::buffer(&ready_byte_, 1),
                          [this](boost::system::error_code ec, std::size_t n) {
                            if (ec || n != 1 || ready_byte_ != kManagerReady) {
                              return;
                            }
                            if (!ready_once_) {
                              ready_once_ = true;
                              LOG(INFO) << "sprocket ready: every process started; registry "
                                        << lock_.dir() << "/" << kRegistryJson;
                            }
                          });
}

void Master::OnManagerExit() {
  absl::StatusOr<ExitStatus> status = RealOs().WaitPidfd(manager_pidfd_->native_handle());
  CHECK(status.ok()) << status.status();
  manager_pidfd_.reset();
  ready_.reset();
  manager_ = 0;
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
  LOG(INFO) << "master: ignoring signal " << sig;
}

std::chrono::milliseconds Master::StopTimeout() const {
  std::chrono::milliseconds longest{0};
  for (const ProcessConfig& p : config_.processes) {
    longest = std::max(longest, p.max_exit_wait);
  }
  // The manager SIGKILLs a slot at max_exit_wait + 0.5 s; allow for that, then stop waiting.
  return longest + std::chrono::seconds(2);
}

void Master::Stop() {
  if (stopping_) {
    return;
  }
  stopping_ = true;
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
  signals_->Close();
  io_.stop();
  LOG(INFO) << "sprocket stopped";
}

}  // namespace sprocket
