// File: process/process_config.h
//
// What an operator or a MainServerCreate hook says about one custom process registration: which
// unit and class, how many instances, the argument, and how the manager treats its exits. The
// same fields are read from the TOML config (server/config.h) and set in C++.
//
//   ProcessConfig p;
//   p.name = "testProcess";
//   p.unit = "/opt/app/libjobs.so";
//   p.class_name = "TestProcess";
//   p.count = 2;
//   p.arg = {{"arg1", absl::ToUnixSeconds(absl::Now())}};
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sprocket {

// How the manager respawns a process that exits. A clean exit after SIGTERM (a hot restart)
// respawns at once; a process that keeps dying young backs off exponentially.
struct RestartPolicy {
  // Delay before the first respawn of a process that died young; doubles each time after.
  std::chrono::milliseconds backoff_start{100};
  // The delay never grows past this.
  std::chrono::milliseconds backoff_max{30000};
  // A process that ran at least this long was stable: its failure counter resets.
  std::chrono::milliseconds stable_after{1000};
  // After this many consecutive young failures the slot is left in state "failed"; 0 = never.
  int give_up_after = 0;
};

struct ProcessConfig {
  // Unique across the server; registry files are NAME.INDEX.pid.
  std::string name;
  // Lets operators restart several registrations at once (e.g. "group:jobs").
  std::string group;
  // Path of the unit's shared library. Relative paths are resolved when the config is loaded.
  std::string unit;
  // Name the class was registered under in the unit (SPROCKET_PROCESS).
  std::string class_name;
  // How many instances (slots) of this registration run; indexes 0..count-1.
  int count = 1;
  // Handed to Run(arg) and available as Arg(); any JSON value.
  nlohmann::json arg = nlohmann::json::object();
  // Bound on OnShutdown: after this the process is killed with SIGKILL.
  std::chrono::milliseconds max_exit_wait{3000};
  // Whether a server reload also restarts this process (one instance at a time). Swoole never
  // reloads custom processes; here it is opt-in.
  bool reload = false;
  // Messages for an instance that is restarting or backing off wait in the manager, up to this
  // many (with those sent but not yet acknowledged); past it, Send fails — never a silent drop.
  int max_queued_messages = 1024;
  RestartPolicy restart;
};

// The HTTP workers: how many, what they serve (controller units) and their limits. Every worker
// loads every controller class of every unit listed.
struct HttpConfig {
  // "HOST:PORT" ("[::1]:9501" for IPv6). The master binds them before forking, so the sockets
  // outlive every worker and a reload never refuses a connection.
  std::vector<std::string> listen = {"127.0.0.1:9501"};
  // 0 runs no HTTP at all.
  int workers = 2;
  // Controller units. With none, there is nothing to serve and no worker is started.
  std::vector<std::string> units;
  // How long a replaced or stopping worker may drain its connections before SIGKILL.
  std::chrono::milliseconds max_wait_time{3000};
  // When set, admin routes (restart, send) also require "Authorization: Bearer <token>".
  std::string admin_token;
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_header_bytes = 8 << 10;
  // Per worker; at the limit the worker stops accepting until a connection closes.
  int max_connections = 4096;
  // An idle keep-alive connection is closed after this.
  std::chrono::milliseconds keep_alive_timeout{15000};
  // A request must arrive whole (headers and body) within this once started.
  std::chrono::milliseconds request_timeout{30000};
  RestartPolicy restart;
};

}  // namespace sprocket
