// File: controllers/controller.h
//
// HTTP controllers: user classes, living in units, that map routes to methods. Only workers load
// them (after fork), so a reload — which replaces every worker — serves the controller code now
// on disk. Responses use the JSON envelope {"code":200,"result":...,"msg":"..."}, as EasySwoole's
// writeJson does.
//
//   class HelloController : public sprocket::Controller {
//    public:
//     void Routes(sprocket::Router& router) override {
//       router.Get("/hello", [](const sprocket::HttpRequest& req, sprocket::HttpResponse& res) {
//         res.Json(200, {{"name", req.Query("name").value_or("world")}}, "ok");
//       });
//     }
//   };
//   SPROCKET_CONTROLLER(HelloController);
//
// Handlers run on the worker's single event-loop thread and must not block for long. Routes
// marked admin are answered only for loopback peers and, when the server has an admin_token,
// only with "Authorization: Bearer <token>"; the server enforces that before the handler runs.
//
// Limits: controller instances exist only in worker processes.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "process/unit.h"

namespace sprocket {

// One request, valid for the duration of the handler call (views point into the parser's buffer).
class HttpRequest {
 public:
  virtual ~HttpRequest() = default;
  virtual std::string_view Method() const = 0;
  // The path without the query string, e.g. "/process/restart".
  virtual std::string_view Path() const = 0;
  // The value of query parameter `key`, percent-decoded; nullopt when absent.
  virtual std::optional<std::string> Query(std::string_view key) const = 0;
  // A header's value ("" when absent); names are case-insensitive.
  virtual std::string_view Header(std::string_view name) const = 0;
  virtual std::string_view Body() const = 0;
  virtual bool FromLoopback() const = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  // The JSON envelope: {"code": code, "result": result, "msg": msg}; the HTTP status is `code`.
  void Json(int code, const nlohmann::json& result, std::string_view msg) {
    status = code;
    content_type = "application/json";
    body = nlohmann::json{{"code", code}, {"result", result}, {"msg", msg}}.dump();
  }
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

struct RouteOptions {
  // Mutating routes: loopback peers only, plus the bearer token when one is configured.
  bool admin = false;
};

class Router {
 public:
  virtual ~Router() = default;
  // Registers `handler` for `method` and the exact `path`. A second route for the same method
  // and path makes the worker fail to start, naming both.
  virtual void Route(std::string_view method, std::string_view path, HttpHandler handler,
                     RouteOptions options = {}) = 0;
  void Get(std::string_view path, HttpHandler handler, RouteOptions options = {}) {
    Route("GET", path, std::move(handler), options);
  }
  void Post(std::string_view path, HttpHandler handler, RouteOptions options = {}) {
    Route("POST", path, std::move(handler), options);
  }
};

// What a controller may ask of the server. Every call goes to the manager, which owns the slot
// table: it signals only live processes of this server and delivers messages through its pipes.
// Results use HTTP status codes (200, 403, 404, 503...) and a message a person can read.
struct ControlResult {
  int code = 200;
  nlohmann::json result;
  std::string msg;
};

class ServerControl {
 public:
  virtual ~ServerControl() = default;
  // Every slot: kind, name, group, index, pid, state, uptime_ms, restarts, last_exit, reason.
  virtual ControlResult ListProcesses() = 0;
  // SIGTERM to the slots selected by `target`, so the manager respawns them:
  // {"pid": P} (optionally with "start_time"), {"name": N} / {"name": N, "index": I}, {"group": G}.
  virtual ControlResult Restart(const nlohmann::json& target) = 0;
  // Delivers `message` to custom process NAME.INDEX's OnPipeReadable.
  virtual ControlResult Send(const std::string& name, int index, std::string_view message) = 0;
};

namespace internal {
// Implemented by the worker runtime.
class ControllerContext {
 public:
  virtual ~ControllerContext() = default;
  virtual ServerControl& Control() = 0;
  virtual int WorkerIndex() const = 0;
};
}  // namespace internal

class Controller {
 public:
  Controller() = default;
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;
  virtual ~Controller();

  // Called once, when the worker starts, to register this controller's routes.
  virtual void Routes(Router& router) = 0;

 protected:
  ServerControl& Control() const;
  int WorkerIndex() const;

 private:
  friend class WorkerRuntime;
  internal::ControllerContext* context_ = nullptr;
};

}  // namespace sprocket

// Registers controller class `cls` (derived from sprocket::Controller) as `name`.
#define SPROCKET_CONTROLLER_AS(cls, name) \
  SPROCKET_INTERNAL_REGISTER(SPROCKET_UNIT_CONTROLLER, ::sprocket::Controller, cls, name)

// Registers controller class `cls` under its own name.
#define SPROCKET_CONTROLLER(cls) SPROCKET_CONTROLLER_AS(cls, #cls)
