// The seed's two examples, as a unit: what `bazel run //server` runs with no config.
//  - TestProcess logs its name and arg, and every message delivered to it.
//  - ProcessReload stays thin and calls Work every 3 s. Because the whole unit is loaded only in
//    the child, `kill -TERM` on it respawns the process with whatever Work is on disk now — the
//    job the seed's lazily loaded work class does in PHP.
#include <chrono>

#include <glog/logging.h>

#include "process/unit.h"

namespace {

class TestProcess : public sprocket::Process {
 public:
  void Run(const nlohmann::json& arg) override {
    LOG(INFO) << "process " << ProcessName() << " " << Index() << " started with arg "
              << arg.dump();
  }

  void OnPipeReadable(sprocket::ProcessPipe& pipe) override {
    while (std::optional<std::string> message = pipe.Read()) {
      LOG(INFO) << "process " << ProcessName() << " " << Index() << " received: " << *message;
    }
  }

  void OnShutdown() override {
    LOG(INFO) << "process " << ProcessName() << " " << Index() << " shutting down";
  }
};

struct Work {
  static void Run(const std::string& name) {
    LOG(INFO) << "Work::Run in " << name << " at "
              << std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  }
};

class ProcessReload : public sprocket::Process {
 public:
  void Run(const nlohmann::json&) override {
    Loop(std::chrono::seconds(3), [this] { Work::Run(ProcessName()); });
  }
};

}  // namespace

SPROCKET_PROCESS(TestProcess);
SPROCKET_PROCESS(ProcessReload);
