// File: controllers/worker_runtime.h
//
// The life of one HTTP worker, from just after fork to exit: load every controller unit, build
// the route table, report ready to the manager, serve HTTP on the inherited listen sockets, and
// on SIGTERM drain (answer each connection's next request with "Connection: close", bounded by
// max_wait_time) and exit 0. Controllers reach the manager through ServerControl, a blocking
// request/response on the worker's channel: the manager owns the slot table.
//
// Limits: runs only in a freshly forked child of the manager.
#pragma once

#include <sys/types.h>

#include <vector>

#include "process/process_config.h"
#include "process/unique_fd.h"

namespace sprocket {

[[noreturn]] void RunWorker(pid_t manager, int index, UniqueFd channel, const HttpConfig& http,
                            const std::vector<int>& listen_fds);

}  // namespace sprocket
