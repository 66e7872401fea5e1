// File: server/listen.h
//
// The master's listen sockets, opened before anything is forked so that they outlive every
// worker: a worker that is replaced or crashes never takes the socket with it, and connections
// wait in the backlog until some worker accepts them.
//
//   absl::StatusOr<std::vector<UniqueFd>> fds = BindListenSockets({"127.0.0.1:9501"});
//
// Limits: master process only.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "process/unique_fd.h"

namespace sprocket {

// Binds and listens on each "HOST:PORT". Errors name the address and the failed call.
absl::StatusOr<std::vector<UniqueFd>> BindListenSockets(const std::vector<std::string>& addresses);

// The address a listening socket is bound to, "127.0.0.1:9501" or "[::1]:9501" (the real port
// when it was bound to port 0).
std::string SocketAddress(int fd);

}  // namespace sprocket
