// File: controllers/http_server.h
//
// A worker's HTTP/1.1 server: Boost.Beast on the worker's Asio loop, accepting on listen sockets
// the master opened (every worker shares them, so a reload never refuses a connection). Limits
// are deliberate: header and body size, connections per worker, a timeout for a request to
// arrive and one for an idle keep-alive connection. A malformed request gets a 4xx JSON
// envelope and its connection is closed; the worker keeps serving.
//
// Drain() is how a worker leaves: it stops accepting, answers each connection's next request
// with "Connection: close" and closes it, and at the max_wait_time deadline closes whatever is
// still idle. Nothing in flight is lost.
//
//   HttpServer server(io, config, [&](const HttpRequest& req, HttpResponse& res) {
//     router.Dispatch(req, res);
//   });
//   server.Listen(listen_fds);
//   ...
//   server.Drain([&] { io.stop(); });
//
// Limits: one per worker process, on its single event-loop thread.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "absl/status/status.h"
#include "controllers/controller.h"
#include "process/process_config.h"

namespace sprocket {

class HttpServer {
 public:
  using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;

  HttpServer(boost::asio::io_context& io, const HttpConfig& config, Handler handler);
  ~HttpServer();

  // Starts accepting on duplicates of `listen_fds` (the caller keeps its own).
  absl::Status Listen(const std::vector<int>& listen_fds);

  // Stops accepting and drains; `on_drained` runs once no connection is left.
  void Drain(std::function<void()> on_drained);

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace sprocket
