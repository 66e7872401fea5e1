// File: controllers/router.h
//
// The worker's route table: controllers register (method, exact path) → handler, and Dispatch
// answers every request — the handler's response, or a JSON-envelope error: 404 for an unknown
// path, 405 for a known path with another method, 403/401 for admin routes asked by a
// non-loopback peer or without the configured bearer token, 500 when a handler throws.
//
//   RouterImpl router(http_config.admin_token);
//   controller->Routes(router);
//   if (!router.status().ok()) ...;   // a duplicate route
//   router.Dispatch(request, response);
//
// Limits: worker processes; no Beast here, so it is testable with a fake HttpRequest.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "controllers/controller.h"

namespace sprocket {

class RouterImpl final : public Router {
 public:
  explicit RouterImpl(std::string admin_token) : admin_token_(std::move(admin_token)) {}

  // sprocket::Router
  void Route(std::string_view method, std::string_view path, HttpHandler handler,
             RouteOptions options) override;

  // Not ok once a route was registered twice (names the method and path).
  const absl::Status& status() const { return status_; }
  std::size_t size() const { return count_; }

  void Dispatch(const HttpRequest& request, HttpResponse& response) const;

 private:
  struct Entry {
    HttpHandler handler;
    RouteOptions options;
  };
  bool Authorized(const HttpRequest& request, HttpResponse& response) const;

  std::string admin_token_;
  // path -> method -> entry
  std::map<std::string, std::map<std::string, Entry, std::less<>>, std::less<>> routes_;
  std::size_t count_ = 0;
  absl::Status status_;
};

// The value of `key` in a query string ("a=1&b=x%20y"), percent- and '+'-decoded.
std::optional<std::string> QueryValue(std::string_view query, std::string_view key);

}  // namespace sprocket
