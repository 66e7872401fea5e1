// A process that reports which build of its unit is running: Run writes "VERSION PID" to
// DIR/version.NAME.INDEX, OnShutdown writes DIR/shutdown.PID. Built twice (version_a,
// version_b) from this one source, the way an operator ships a new build of the same unit.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "process/unit.h"

namespace {

class VersionProcess : public sprocket::Process {
 public:
  void Run(const nlohmann::json& arg) override {
    dir_ = arg.at("dir").get<std::string>();
    const std::string path =
        dir_ + "/version." + ProcessName() + "." + std::to_string(Index());
    std::ofstream(path + ".tmp") << UNIT_VERSION << " " << ::getpid() << "\n";
    ::rename((path + ".tmp").c_str(), path.c_str());
  }

  void OnPipeReadable(sprocket::ProcessPipe& pipe) override {
    while (std::optional<std::string> message = pipe.Read()) {
      std::ofstream(dir_ + "/message." + std::to_string(::getpid()), std::ios::app)
          << *message << "\n";
    }
  }

  void OnShutdown() override {
    std::ofstream(dir_ + "/shutdown." + std::to_string(::getpid())) << UNIT_VERSION << "\n";
  }

 private:
  std::string dir_;
};

// Takes 300 ms to shut down: long enough to watch the successor forked ahead, waiting.
class SlowShutdownVersion : public VersionProcess {
 public:
  void OnShutdown() override {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    VersionProcess::OnShutdown();
  }
};

}  // namespace

SPROCKET_PROCESS(VersionProcess);
SPROCKET_PROCESS(SlowShutdownVersion);
