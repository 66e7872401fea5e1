#include "server/server.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <vector>

#include <glog/logging.h>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "process/fork_setup.h"
#include "process/process_title.h"
#include "process/registry.h"
#include "server/listen.h"
#include "server/logging.h"
#include "server/manager.h"
#include "server/master.h"
#include "systemd/notify.h"
#include "tools/cpp/runfiles/runfiles.h"

// glog's own flags (--v, --logtostderr) are gflags, which absl's parser rejects: sprocket's
// flags are absl flags and set glog's FLAGS_* in code.
ABSL_FLAG(std::string, config, "", "TOML config file with [[process]] registrations");
ABSL_FLAG(std::string, run_dir, "",
          "runtime dir for the pid registry (default: $RUNTIME_DIRECTORY, the config's run_dir, "
          "/run/sprocket as root, else $XDG_RUNTIME_DIR/sprocket or /tmp/sprocket-UID)");
ABSL_FLAG(int, verbosity, 0, "glog VLOG level");
ABSL_FLAG(std::vector<std::string>, listen, {},
          "HTTP listen addresses, HOST:PORT[,HOST:PORT...] (default: the config's, else "
          "127.0.0.1:9501)");
ABSL_FLAG(int, workers, -1, "HTTP worker processes (default: the config's, else 2)");
ABSL_FLAG(bool, system_bus, true,
          "also serve the control API on the system bus as org.sprocket.Server1 when there is one "
          "(it is always on RUN_DIR/control.sock)");

namespace sprocket {
namespace {

std::unique_ptr<bazel::tools::cpp::runfiles::Runfiles> g_runfiles;

// --run_dir wins (handled by the caller), then $RUNTIME_DIRECTORY, then the config's run_dir.
std::string RunDir(const ServerConfig& config) {
  const char* systemd_dir = std::getenv("RUNTIME_DIRECTORY");
  if ((systemd_dir == nullptr || *systemd_dir == 0) && !config.run_dir.empty()) {
    return config.run_dir;
  }
  return DefaultRunDir();
}

absl::StatusOr<ServerConfig> BuildConfig(const ServerOptions& options) {
  ServerConfig config;
  if (options.main_server_create) {
    if (absl::Status s = options.main_server_create(config); !s.ok()) {
      return s;
    }
  }
  const std::string file = absl::GetFlag(FLAGS_config);
  if (!file.empty()) {
    absl::StatusOr<ServerConfig> loaded = LoadConfigFile(file);
    if (!loaded.ok()) {
      return loaded.status();
    }
    MergeConfig(config, *std::move(loaded));
  } else if (options.default_config) {
    if (absl::Status s = options.default_config(config); !s.ok()) {
      return s;
    }
  }
  if (std::vector<std::string> listen = absl::GetFlag(FLAGS_listen); !listen.empty()) {
    config.http.listen = std::move(listen);
  }
  if (int workers = absl::GetFlag(FLAGS_workers); workers >= 0) {
    config.http.workers = workers;
  }
  if (absl::Status s = ValidateConfig(config); !s.ok()) {
    return s;
  }
  return config;
}

// Sockets systemd handed over (a sprocket.socket unit, or our own from the fd store after a
// restart) win over --listen: that is what keeps connections from being refused while the
// master restarts. Freshly bound ones go into the fd store for next time.
absl::StatusOr<std::vector<UniqueFd>> ListenSockets(const ServerConfig& config) {
  std::vector<UniqueFd> inherited = TakeListenFds();
  if (WorkerCount(config) == 0) {
    return std::vector<UniqueFd>();
  }
  if (!inherited.empty()) {
    LOG(INFO) << "listening on " << inherited.size() << " socket(s) passed by systemd";
    return inherited;
  }
  absl::StatusOr<std::vector<UniqueFd>> bound = BindListenSockets(config.http.listen);
  if (bound.ok()) {
    std::vector<int> fds;
    for (const UniqueFd& fd : *bound) {
      fds.push_back(fd.get());
    }
    if (Notifier().StoreFds(fds, "http")) {
      LOG(INFO) << "listen sockets stored in systemd's fd store";
    }
  }
  return bound;
}

}  // namespace

std::string RunfilePath(const std::string& path) {
  return g_runfiles ? g_runfiles->Rlocation(path) : std::string();
}

int RunServer(int argc, char** argv, const ServerOptions& options) {
  // Before anything could fork or start a thread: every process reads these from a signalfd.
  BlockLoopSignals();
  IgnoreSigpipe();
  std::vector<std::string> args = InitProcessTitle(argc, argv);
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) {
    arg_ptrs.push_back(a.data());
  }
  absl::SetProgramUsageMessage("sprocket: a process server for C++ services");
  std::vector<char*> rest = absl::ParseCommandLine(static_cast<int>(arg_ptrs.size()),
                                                   arg_ptrs.data());
  if (rest.size() > 1) {
    std::cerr << "sprocket: unexpected argument '" << rest[1] << "' (flags are --name=value)\n";
    return 2;
  }
  InitLogging(args[0], absl::GetFlag(FLAGS_verbosity));
  std::string runfiles_error;
  g_runfiles.reset(bazel::tools::cpp::runfiles::Runfiles::Create(args[0], &runfiles_error));
  absl::StatusOr<ServerConfig> config = BuildConfig(options);
  if (!config.ok()) {
    std::cerr << "sprocket: bad configuration: " << config.status().message() << "\n";
    return 2;
  }
  std::string run_dir = absl::GetFlag(FLAGS_run_dir);
  if (run_dir.empty()) {
    run_dir = RunDir(*config);
  }
  absl::StatusOr<RunDirLock> lock = RunDirLock::Acquire(run_dir);
  if (!lock.ok()) {
    std::cerr << "sprocket: " << lock.status().message() << "\n";
    return 1;
  }
  if (lock->stale_files() > 0) {
    LOG(WARNING) << "replaced a stale pid registry in " << run_dir << " ("
                 << lock->stale_files() << " files left by pid " << lock->stale_pid() << ")";
  }
  absl::StatusOr<std::vector<UniqueFd>> listen_fds = ListenSockets(*config);
  if (!listen_fds.ok()) {
    std::cerr << "sprocket: " << listen_fds.status().message() << "\n";
    return 1;
  }
  Master master(*config, *std::move(lock), *std::move(listen_fds),
                {.system_bus = absl::GetFlag(FLAGS_system_bus)});
  return master.Run();
}

}  // namespace sprocket
