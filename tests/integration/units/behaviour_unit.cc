// Processes that misbehave on purpose, one class per behaviour the manager must handle.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "process/unit.h"

namespace {

std::string Dir(const nlohmann::json& arg) { return arg.at("dir").get<std::string>(); }

int64_t MonotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Run exits at once: a crash loop the manager must space out.
class ExitAtOnce : public sprocket::Process {
 public:
  void Run(const nlohmann::json& arg) override {
    std::ofstream(Dir(arg) + "/starts." + ProcessName(), std::ios::app) << MonotonicMs() << "\n";
    std::_Exit(3);
  }
};

// Run throws; OnException records the error, then the default handler exits (respawn).
class ThrowInRun : public sprocket::Process {
 public:
  void Run(const nlohmann::json& arg) override {
    dir_ = Dir(arg);
    throw std::runtime_error("thrown from Run");
  }
  void OnException(const std::exception& error) override {
    std::ofstream(dir_ + "/exception." + std::to_string(::getpid())) << error.what() << "\n";
    sprocket::Process::OnException(error);
  }

 private:
  std::string dir_;
};

// A timer throws; the override keeps the process running and counts the exceptions.
class ThrowInTimer : public sprocket::Process {
 public:
  void Run(const nlohmann::json& arg) override {
    dir_ = Dir(arg);
    After(std::chrono::milliseconds(10), [] { throw std::logic_error("thrown from a timer"); });
  }
  void OnException(const std::exception& error) override {
    std::ofstream(dir_ + "/caught." + std::to_string(::getpid())) << error.what() << "\n";
  }

 private:
  std::string dir_;
};

class ThrowInConstructor : public sprocket::Process {
 public:
  ThrowInConstructor() { throw std::runtime_error("boom"); }
  void Run(const nlohmann::json&) override {}
};

// OnShutdown never returns: max_exit_wait must end the process.
class HangOnShutdown : public sprocket::Process {
 public:
  void Run(const nlohmann::json& arg) override { dir_ = Dir(arg); }
  void OnShutdown() override {
    std::ofstream(dir_ + "/hanging." + std::to_string(::getpid())) << "1\n";
    for (;;) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }

 private:
  std::string dir_;
};

// Exercises the timer API: a Loop cleared by its own callback after 5 ticks, an After, and an
// After cleared before it fires.
class Timers : public sprocket::Process {
 public:
  void Run(const nlohmann::json& arg) override {
    dir_ = Dir(arg);
    loop_ = Loop(std::chrono::milliseconds(20), [this] {
      if (++ticks_ == 5) {
        cleared_in_callback_ = Clear(loop_);
      }
    });
    const sprocket::TimerId never = After(std::chrono::milliseconds(50), [this] { ++never_; });
    cleared_before_ = Clear(never);
    After(std::chrono::milliseconds(400), [this] {
      std::ofstream(dir_ + "/timers") << ticks_ << " " << cleared_in_callback_ << " "
                                      << cleared_before_ << " " << never_ << " "
                                      << Clear(loop_) << "\n";
    });
  }

 private:
  std::string dir_;
  sprocket::TimerId loop_ = 0;
  int ticks_ = 0;
  int never_ = 0;
  bool cleared_in_callback_ = false;
  bool cleared_before_ = false;
};

}  // namespace

SPROCKET_PROCESS(ExitAtOnce);
SPROCKET_PROCESS(ThrowInRun);
SPROCKET_PROCESS(ThrowInTimer);
SPROCKET_PROCESS(ThrowInConstructor);
SPROCKET_PROCESS(HangOnShutdown);
SPROCKET_PROCESS(Timers);

namespace {

// The first instance dies inside OnPipeReadable, before the message is acknowledged; the next
// instance must get the same message again (at-least-once across a crash).
class CrashOnFirstMessage : public sprocket::Process {
 public:
  void Run(const nlohmann::json& arg) override { dir_ = Dir(arg); }
  void OnPipeReadable(sprocket::ProcessPipe& pipe) override {
    while (std::optional<std::string> message = pipe.Read()) {
      const std::string marker = dir_ + "/crashed-once";
      if (::access(marker.c_str(), F_OK) != 0) {
        std::ofstream(marker) << ::getpid() << "\n";
        std::_Exit(9);
      }
      std::ofstream(dir_ + "/received." + std::to_string(::getpid()), std::ios::app)
          << *message << "\n";
    }
  }

 private:
  std::string dir_;
};

}  // namespace

SPROCKET_PROCESS(CrashOnFirstMessage);
