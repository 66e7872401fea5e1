// File: server/master.h
//
// The master process: holds the runtime dir lock and the listen sockets, forks the manager (and
// forks it again if it dies), reports readiness, turns SIGHUP into a rolling reload, and on
// SIGTERM/SIGINT stops the manager — which stops every child — before clearing the registry and
// exiting 0. It never loads a unit and never forks anything but the manager.
//
//   Master master(config, *std::move(lock), *std::move(listen_fds));
//   return master.Run();
//
// Limits: one per run dir (the lock); the process that called main().
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "process/frame_channel.h"
#include "process/registry.h"
#include "process/signal_reader.h"
#include "process/unique_fd.h"
#include "server/config.h"
#include "server/mailboxes.h"
#include "systemd/control_api.h"
#include "systemd/notify.h"

namespace sprocket {

class Master final : public ControlBackend {
 public:
  struct Options {
    // Also serve the control API on the system bus when there is one.
    bool system_bus = true;
  };
  Master(const ServerConfig& config, RunDirLock lock, std::vector<UniqueFd> listen_fds,
         Options options);
  // Runs until stopped; returns the process exit code.
  int Run();

  // sprocket::ControlBackend
  // Sends a control request to the manager; `done` gets its reply, or a 503 reply if the
  // manager is not there or goes away before answering.
  void Call(nlohmann::json request, std::function<void(nlohmann::json)> done) override;
  std::string StatusLine() const override { return status_line_; }
  void RequestStop() override { Stop(); }

 private:
  void SpawnManager();
  void WatchManager();
  void OnManagerFrame(Frame frame);
  void OnManagerEvent(const nlohmann::json& event);
  void OnManagerRequest(const nlohmann::json& request);
  void OnManagerExit();
  void FailPendingCalls(const std::string& why);
  void OnSignal(int sig);
  void Reload();
  void OnReloadDone(const nlohmann::json& reply);
  void StartWatchdog();
  void OnWatchdogTick();
  void Stop();
  void Finish();
  std::chrono::milliseconds StopTimeout() const;

  const ServerConfig& config_;
  RunDirLock lock_;
  Options options_;
  std::vector<UniqueFd> listen_fds_;
  boost::asio::io_context io_;
  std::unique_ptr<SignalReader> signals_;
  std::unique_ptr<ControlApi> control_api_;
  Mailboxes mailboxes_;
  std::string status_line_ = "starting";
  pid_t manager_ = 0;
  std::optional<boost::asio::posix::stream_descriptor> manager_pidfd_;
  std::shared_ptr<FrameChannel> manager_channel_;
  std::map<std::uint64_t, std::function<void(nlohmann::json)>> pending_;
  std::uint64_t next_call_id_ = 1;
  bool ready_once_ = false;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point manager_started_;
  std::chrono::milliseconds manager_backoff_{0};
  boost::asio::steady_timer respawn_timer_;
  boost::asio::steady_timer kill_timer_;
  Notifier notifier_;
  // Reloads in flight (SIGHUP and API): RELOADING=1 on the first, READY=1 after the last.
  int reloads_in_flight_ = 0;
  std::chrono::microseconds watchdog_period_{0};
  boost::asio::steady_timer watchdog_timer_;
  // The manager answered the last heartbeat: only then is systemd's watchdog fed.
  bool heartbeat_answered_ = true;
  int exit_code_ = 0;
};

}  // namespace sprocket
