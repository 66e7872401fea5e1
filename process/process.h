// File: process/process.h
//
// The class user code extends to run beside the server — sprocket's counterpart of EasySwoole's
// AbstractProcess. A unit registers the class (process/unit.h); the manager forks one child per
// instance, the child loads the unit, constructs the class and calls Run(arg) on the child's
// event loop. Killing an instance with SIGTERM runs OnShutdown, and the manager starts a fresh
// instance from the unit that is on disk now: that is how new code goes live.
//
//   class QueueConsumer : public sprocket::Process {
//    public:
//     void Run(const nlohmann::json& arg) override {
//       Loop(std::chrono::seconds(3), [this] { LOG(INFO) << ProcessName() << " tick"; });
//     }
//     void OnPipeReadable(sprocket::ProcessPipe& pipe) override {
//       while (auto message = pipe.Read()) LOG(INFO) << "got " << *message;
//     }
//   };
//   SPROCKET_PROCESS(QueueConsumer);
//
// Every callback runs on the child's single thread. An exception thrown from any of them goes to
// OnException; the default logs it and exits non-zero, so the manager respawns the process.
//
// Limits: instances exist only in custom-process children; the master and manager never see them.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

namespace sprocket {

// Messages the manager delivered to this process, whole (the pipe is length-prefixed).
class ProcessPipe {
 public:
  virtual ~ProcessPipe() = default;
  // The next whole message, or nullopt when none is waiting.
  virtual std::optional<std::string> Read() = 0;
};

using TimerId = std::uint64_t;

namespace internal {
// What a Process's helpers call into; implemented by the child runtime (process/child_runtime.cc).
class ProcessContext {
 public:
  virtual ~ProcessContext() = default;
  virtual const std::string& Name() const = 0;
  virtual int Index() const = 0;
  virtual const nlohmann::json& Arg() const = 0;
  virtual boost::asio::io_context& EventLoop() = 0;
  virtual TimerId AddTimer(std::chrono::milliseconds period, bool repeat,
                           std::function<void()> fn) = 0;
  virtual bool ClearTimer(TimerId id) = 0;
};
}  // namespace internal

class Process {
 public:
  Process() = default;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  virtual ~Process();

  // Runs once when the process starts, with the registration's arg. Returning does not end the
  // process: its timers and pipe keep it alive until it is told to stop.
  virtual void Run(const nlohmann::json& arg) = 0;

  // The manager delivered one or more messages; read them with pipe.Read(). Messages left
  // unread when this returns are dropped with a warning, so a forgotten Read cannot spin.
  virtual void OnPipeReadable(ProcessPipe& pipe);

  // The process was told to stop (SIGTERM, server stop, restart). Bounded by the registration's
  // max_exit_wait: after that the process is killed.
  virtual void OnShutdown();

  // An exception escaped Run, OnPipeReadable, OnShutdown or a timer. The default logs it and
  // exits with status 70, so the manager respawns the process. An override that returns keeps
  // the process running.
  virtual void OnException(const std::exception& error);

  // "testProcess", as registered; with Index() it names the registry file NAME.INDEX.pid.
  const std::string& ProcessName() const;
  int Index() const;
  // The registration's arg (the same value Run received).
  const nlohmann::json& Arg() const;

  // Calls fn every `period` until Clear(id). Returns the timer's id.
  TimerId Loop(std::chrono::milliseconds period, std::function<void()> fn);
  // Calls fn once after `delay`.
  TimerId After(std::chrono::milliseconds delay, std::function<void()> fn);
  // Cancels a timer. False if it had already fired (After) or was unknown.
  bool Clear(TimerId id);

  // The child's event loop, for sockets and anything else Asio drives.
  boost::asio::io_context& EventLoop();

 private:
  friend class ChildRuntime;
  internal::ProcessContext* context_ = nullptr;
};

}  // namespace sprocket
