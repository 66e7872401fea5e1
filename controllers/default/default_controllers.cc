// The default controllers, as a unit: what every sprocket server serves.
//   GET  /                    hello, with the worker's pid
//   GET  /process             the registry: every slot's kind, name, index, pid, state, uptime...
//   POST /process/restart     ?pid=P | ?name=N[&index=I] | ?group=G: SIGTERM through the manager,
//                             which refuses any pid that is not a live process of this server
//   POST /process/send        ?name=N&index=I with a body: delivered to that process's
//                             OnPipeReadable
// The mutating routes are admin routes: loopback peers only, plus the bearer token if set.
#include <unistd.h>

#include <charconv>

#include "controllers/controller.h"

namespace {

using sprocket::HttpRequest;
using sprocket::HttpResponse;

class IndexController : public sprocket::Controller {
 public:
  void Routes(sprocket::Router& router) override {
    // The answer never changes within a worker: build it once.
    HttpResponse hello;
    hello.Json(200, {{"hello", "sprocket"}, {"worker", WorkerIndex()}, {"pid", ::getpid()}},
               "ok");
    router.Get("/", [body = hello.body](const HttpRequest&, HttpResponse& res) {
      res.body = body;
    });
  }
};

// A strictly positive decimal integer, or nullopt (rejecting "12abc", "-1", "", overflow).
std::optional<long long> PositiveInt(const std::optional<std::string>& text, bool allow_zero) {
  if (!text || text->empty()) {
    return std::nullopt;
  }
  long long value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < (allow_zero ? 0 : 1)) {
    return std::nullopt;
  }
  return value;
}

void Reply(HttpResponse& res, const sprocket::ControlResult& r) { res.Json(r.code, r.result, r.msg); }

class ProcessController : public sprocket::Controller {
 public:
  void Routes(sprocket::Router& router) override {
    router.Get("/process", [this](const HttpRequest&, HttpResponse& res) {
      Reply(res, Control().ListProcesses());
    });
    router.Post(
        "/process/restart",
        [this](const HttpRequest& req, HttpResponse& res) { Restart(req, res); }, {.admin = true});
    router.Post(
        "/process/send", [this](const HttpRequest& req, HttpResponse& res) { Send(req, res); },
        {.admin = true});
  }

 private:
  void Restart(const HttpRequest& req, HttpResponse& res) {
    nlohmann::json target;
    if (std::optional<std::string> pid = req.Query("pid")) {
      std::optional<long long> value = PositiveInt(pid, /*allow_zero=*/false);
      if (!value || *value > 0x7fffffff) {
        return res.Json(400, nullptr, "pid must be a positive integer, got '" + *pid + "'");
      }
      target["pid"] = *value;
    } else if (std::optional<std::string> name = req.Query("name")) {
      target["name"] = *name;
      if (std::optional<std::string> index = req.Query("index")) {
        std::optional<long long> value = PositiveInt(index, /*allow_zero=*/true);
        if (!value || *value > 100000) {
          return res.Json(400, nullptr, "index must be a non-negative integer, got '" + *index + "'");
        }
        target["index"] = *value;
      }
    } else if (std::optional<std::string> group = req.Query("group")) {
      target["group"] = *group;
    } else {
      return res.Json(400, nullptr, "give ?pid=PID, ?name=NAME[&index=I] or ?group=GROUP");
    }
    Reply(res, Control().Restart(target));
  }

  void Send(const HttpRequest& req, HttpResponse& res) {
    std::optional<std::string> name = req.Query("name");
    if (!name || name->empty()) {
      return res.Json(400, nullptr, "give ?name=NAME&index=I and the message as the body");
    }
    std::optional<std::string> index_text = req.Query("index");
    std::optional<long long> index = index_text ? PositiveInt(index_text, true) : 0LL;
    if (!index || *index > 100000) {
      return res.Json(400, nullptr, "index must be a non-negative integer");
    }
    Reply(res, Control().Send(*name, static_cast<int>(*index), req.Body()));
  }
};

}  // namespace

SPROCKET_CONTROLLER(IndexController);
SPROCKET_CONTROLLER(ProcessController);
