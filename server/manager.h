// File: server/manager.h
//
// The manager process: forked by the master, it runs the supervisor (every custom process
// slot), writes the pid registry, reports readiness to the master over a pipe, and on SIGTERM
// stops every slot in order and exits. It never loads a unit, holds no bus connection and stays
// single-threaded, so every child it forks starts clean.
//
// Limits: call only in the manager child, right after fork.
#pragma once

#include <sys/types.h>

#include "process/unique_fd.h"
#include "server/config.h"

namespace sprocket {

// Byte the manager writes on the ready pipe once every slot is running or settled in backoff.
inline constexpr char kManagerReady = 'R';

[[noreturn]] void RunManager(pid_t master, const ServerConfig& config, const std::string& run_dir,
                             UniqueFd ready_pipe);

}  // namespace sprocket
