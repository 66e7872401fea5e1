// File: server/master.h
//
// The master process: holds the runtime dir lock, forks the manager (and forks it again if it
// dies), reports readiness, and on SIGTERM/SIGINT stops the manager — which stops every child —
// before clearing the registry and exiting 0. It never loads a unit and never forks anything
// but the manager.
//
//   Master master(config, *std::move(lock));
//   return master.Run();
//
// Limits: one per run dir (the lock); the process that called main().
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "process/registry.h"
#include "process/signal_reader.h"
#include "server/config.h"

namespace sprocket {

class Master {
 public:
  Master(const ServerConfig& config, RunDirLock lock);
  // Runs until stopped; returns the process exit code.
  int Run();

 private:
  void SpawnManager();
  void WatchManager();
  void ReadReady();
  void OnManagerExit();
  void OnSignal(int sig);
  void Stop();
  void Finish();
  std::chrono::milliseconds StopTimeout() const;

  const ServerConfig& config_;
  RunDirLock lock_;
  boost::asio::io_context io_;
  std::unique_ptr<SignalReader> signals_;
  pid_t manager_ = 0;
  std::optional<boost::asio::posix::stream_descriptor> manager_pidfd_;
  std::optional<boost::asio::posix::stream_descriptor> ready_;
  char ready_byte_ = 0;
  bool ready_once_ = false;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point manager_started_;
  std::chrono::milliseconds manager_backoff_{0};
  boost::asio::steady_timer respawn_timer_;
  boost::asio::steady_timer kill_timer_;
  int exit_code_ = 0;
};

}  // namespace sprocket
