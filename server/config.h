// File: server/config.h
//
// The server's configuration: where the runtime dir is and which custom processes run. It comes
// from a MainServerCreate hook in C++, from a TOML file (--config=FILE), or both (the file's
// registrations are added after the hook's). Runs in the master, before anything is forked: a bad
// config is reported once and nothing starts.
//
//   absl::StatusOr<ServerConfig> config = LoadConfigFile("/etc/sprocket/sprocket.toml");
//   if (!config.ok()) { std::cerr << config.status().message(); return 2; }
//
// The file format (every field but name, unit and class is optional):
//
//   run_dir = "/run/sprocket"
//   [[process]]
//   name = "testProcess"          # unique; registry files are NAME.INDEX.pid
//   group = "demo"
//   unit = "units/libseed.so"     # relative to the config file's folder
//   class = "TestProcess"
//   count = 2
//   arg = { arg1 = 1700000000 }   # any TOML value, handed to Run() as JSON
//   max_exit_wait_ms = 3000
//   reload = false
//   [process.restart]
//   backoff_start_ms = 100
//   backoff_max_ms = 30000
//   stable_after_ms = 1000
//   give_up_after = 0
//
//   [http]
//   listen = ["127.0.0.1:9501"]
//   workers = 2
//   units = ["units/libapi.so"]   # controller units, relative to the config file's folder
//   max_wait_time_ms = 3000       # drain bound for a replaced or stopping worker
//   admin_token = ""
//   max_body_bytes = 1048576
//   max_header_bytes = 8192
//   max_connections = 4096        # per worker
//   keep_alive_timeout_ms = 15000
//   request_timeout_ms = 30000
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "process/process_config.h"

namespace sprocket {

struct ServerConfig {
  // Empty: $RUNTIME_DIRECTORY when systemd sets it, else the --run_dir flag's default.
  std::string run_dir;
  std::vector<ProcessConfig> processes;
  HttpConfig http;
  // Set by LoadConfigFile when the file has an [http] table (MergeConfig then takes its fields).
  bool has_http = false;
};

// Parses and validates a TOML config file. Every error is InvalidArgument with one line that
// names the file, the line and the field: "sprocket.toml:7: process 'jobs': field 'count': must
// be a positive integer, got -1". Unknown fields, wrong types, a unit file that does not exist
// and a duplicate process name are errors.
absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path);

// Validates registrations however they were made (the C++ hook has no file or line, so errors
// name the registration): names unique and usable in file names, count >= 1, unit and class set,
// the unit file exists, the restart policy is consistent.
absl::Status ValidateConfig(const ServerConfig& config);

// Adds `extra`'s processes to `base` (the hook's registrations first, then the file's);
// a run_dir set in `extra` wins; when `extra` has an [http] table its settings win and its
// controller units are added after `base`'s.
void MergeConfig(ServerConfig& base, ServerConfig extra);

// Parses "HOST:PORT" or "[V6HOST]:PORT" into host and port.
absl::StatusOr<std::pair<std::string, int>> ParseListenAddress(const std::string& address);

}  // namespace sprocket
