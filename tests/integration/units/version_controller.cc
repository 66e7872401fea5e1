// A controller that reports which build of its unit serves the request; built twice (ctl_v1,
// ctl_v2) so a reload can be seen to change code.
#include <unistd.h>

#include <stdexcept>

#include "controllers/controller.h"

namespace {

class VersionController : public sprocket::Controller {
 public:
  void Routes(sprocket::Router& router) override {
    router.Get("/version", [](const sprocket::HttpRequest&, sprocket::HttpResponse& res) {
      res.Json(200, {{"version", UNIT_VERSION}, {"pid", ::getpid()}}, "ok");
    });
    router.Get("/throw", [](const sprocket::HttpRequest&, sprocket::HttpResponse&) {
      throw std::runtime_error("handler exploded");
    });
    router.Post("/echo", [](const sprocket::HttpRequest& req, sprocket::HttpResponse& res) {
      res.Json(200, {{"body", std::string(req.Body())}, {"q", req.Query("q").value_or("")}},
               "ok");
    });
  }
};

}  // namespace

SPROCKET_CONTROLLER(VersionController);
