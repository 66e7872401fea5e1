#include "server/manager.h"

#include <unistd.h>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "process/channel.h"
#include "process/fork_setup.h"
#include "process/os.h"
#include "process/process_title.h"
#include "process/registry.h"
#include "process/signal_reader.h"
#include "process/supervisor.h"

namespace sprocket {
namespace {

int ManagerMain(const ServerConfig& config, const std::string& run_dir, UniqueFd ready_pipe) {
  boost::asio::io_context io;
  Registry registry(run_dir);
  const std::string pid_file = absl::StrCat(run_dir, "/", kManagerPidFile);
  if (absl::Status s = WriteFileAtomically(pid_file, absl::StrCat(::getpid(), "\n")); !s.ok()) {
    LOG(WARNING) << "manager: " << s.message() << ", ignoring";
  }
  std::unique_ptr<Supervisor> supervisor = NewSupervisor(io, RealOs(), config.processes, registry);
  auto stop = [&] {
    supervisor->Stop([&] {
      registry.RemoveSlotFiles();
      ::unlink(pid_file.c_str());
      io.stop();
    });
  };
  absl::StatusOr<std::unique_ptr<SignalReader>> signals =
      SignalReader::Open(io, LoopSignals(), [&](int sig) {
        if (sig == SIGTERM || sig == SIGINT) {
          LOG(INFO) << "manager: stopping every process";
          stop();
        }
      });
  if (!signals.ok()) {
    LOG(ERROR) << "manager: " << signals.status();
    return 1;
  }
  supervisor->Start([&] {
    const char ready = kManagerReady;
    if (absl::Status s = WriteAll(ready_pipe.get(), std::string_view(&ready, 1)); !s.ok()) {
      LOG(WARNING) << "manager: cannot report ready: " << s.message() << ", ignoring";
    }
  });
  io.run();
  return 0;
}

}  // namespace

void RunManager(pid_t master, const ServerConfig& config, const std::string& run_dir,
                UniqueFd ready_pipe) {
  const int keep[] = {ready_pipe.get()};
  PrepareForkedChild(master, keep);
  // Our own process group: a Ctrl-C on the terminal reaches only the master, which then stops
  // us and the children in order instead of everyone exiting at once.
  ::setpgid(0, 0);
  SetProcessTitle("sprocket: manager");
  const int code = ManagerMain(config, run_dir, std::move(ready_pipe));
  google::FlushLogFiles(google::GLOG_INFO);
  ::_exit(code);
}

}  // namespace sprocket
