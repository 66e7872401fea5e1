// File: server/server.h
//
// The entry point of a sprocket server binary. A binary registers its custom processes in C++
// through a MainServerCreate hook (EasySwoole's mainServerCreate event), reads more from
// --config=FILE, and hands control to RunServer, which becomes the master.
//
//   int main(int argc, char** argv) {
//     sprocket::ServerOptions options;
//     options.main_server_create = [](sprocket::ServerConfig& config) {
//       sprocket::ProcessConfig p;
//       p.name = "consumer"; p.unit = "/opt/app/libjobs.so"; p.class_name = "QueueConsumer";
//       p.count = 4; p.arg = {{"queue", "mail"}};
//       config.processes.push_back(p);
//       return absl::OkStatus();
//     };
//     return sprocket::RunServer(argc, argv, options);
//   }
//
// Flags: --config=FILE, --run_dir=DIR, --listen=HOST:PORT[,...], --workers=N, --verbosity=N
// (glog's VLOG level). Logs go to stderr.
//
// Limits: call once, from main, before any thread starts.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "server/config.h"

namespace sprocket {

using MainServerCreate = std::function<absl::Status(ServerConfig& config)>;

struct ServerOptions {
  // Registrations made in C++; always applied, before the --config file's.
  MainServerCreate main_server_create;
  // Registrations used only when no --config is given (//server's embedded default).
  MainServerCreate default_config;
};

// Parses flags, builds and validates the config, takes the run dir, and runs the master until
// it is stopped. Returns the exit code: 0 after a clean stop, 2 for a bad config or flags,
// 1 when the run dir is held by another server or the server failed.
int RunServer(int argc, char** argv, const ServerOptions& options);

// Finds a file of the server's Bazel runfiles ("sprocket/process/seed/libseed_processes.so"),
// for registrations of units built alongside the binary. Empty if there are no runfiles.
std::string RunfilePath(const std::string& path);

}  // namespace sprocket
