// File: server/manager.h
//
// The manager process: forked by the master, it runs the supervisor (every worker and custom
// process slot), writes the pid registry, reports readiness to the master and answers its
// control requests (reload, list, restart, send) over a framed socket, and on SIGTERM stops
// every slot in order and exits. It never loads a unit, holds no bus connection and stays
// single-threaded, so every child it forks starts clean.
//
// Limits: call only in the manager child, right after fork.
#pragma once

#include <sys/types.h>

#include <vector>

#include "process/unique_fd.h"
#include "server/config.h"

namespace sprocket {

// `channel` is the manager's end of its framed socket to the master; `listen_fds` are the
// master's listen sockets, which the workers inherit.
[[noreturn]] void RunManager(pid_t master, const ServerConfig& config, const std::string& run_dir,
                             UniqueFd channel, const std::vector<int>& listen_fds);

// How many workers run: none without controller units.
int WorkerCount(const ServerConfig& config);

}  // namespace sprocket
