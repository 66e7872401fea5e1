#include "controllers/router.h"

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sprocket {
namespace {

using ::testing::HasSubstr;

class FakeRequest : public HttpRequest {
 public:
  FakeRequest(std::string method, std::string path, bool loopback = true)
      : method_(std::move(method)), path_(std::move(path)), loopback_(loopback) {}
  std::string_view Method() const override { return method_; }
  std::string_view Path() const override { return path_; }
  std::optional<std::string> Query(std::string_view) const override { return std::nullopt; }
  std::string_view Header(std::string_view name) const override {
    auto it = headers_.find(std::string(name));
    return it == headers_.end() ? std::string_view() : std::string_view(it->second);
  }
  std::string_view Body() const override { return ""; }
  bool FromLoopback() const override { return loopback_; }
  std::map<std::string, std::string> headers_;

 private:
  std::string method_, path_;
  bool loopback_;
};

nlohmann::json Envelope(const HttpResponse& r) { return nlohmann::json::parse(r.body); }

RouterImpl MakeRouter(const std::string& token = "") {
  RouterImpl router(token);
  router.Get("/a", [](const HttpRequest&, HttpResponse& res) { res.Json(200, "A", "ok"); });
  router.Post("/admin", [](const HttpRequest&, HttpResponse& res) { res.Json(200, "done", "ok"); },
              {.admin = true});
  router.Get("/boom", [](const HttpRequest&, HttpResponse&) { throw std::runtime_error("x"); });
  return router;
}

TEST(RouterTest, DispatchesByMethodAndExactPath) {
  RouterImpl router = MakeRouter();
  HttpResponse res;
  router.Dispatch(FakeRequest("GET", "/a"), res);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(Envelope(res), (nlohmann::json{{"code", 200}, {"result", "A"}, {"msg", "ok"}}));
  EXPECT_EQ(router.size(), 3u);
}

TEST(RouterTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  RouterImpl router = MakeRouter();
  HttpResponse missing;
  router.Dispatch(FakeRequest("GET", "/a/b"), missing);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(Envelope(missing)["code"], 404);
  HttpResponse wrong;
  router.Dispatch(FakeRequest("DELETE", "/a"), wrong);
  EXPECT_EQ(wrong.status, 405);
  ASSERT_EQ(wrong.headers.size(), 1u);
  EXPECT_EQ(wrong.headers[0], (std::pair<std::string, std::string>{"Allow", "GET"}));
}

TEST(RouterTest, AdminRoutesRefuseNonLoopbackPeers) {
  RouterImpl router = MakeRouter();
  HttpResponse res;
  router.Dispatch(FakeRequest("POST", "/admin", /*loopback=*/false), res);
  EXPECT_EQ(res.status, 403);
  EXPECT_THAT(Envelope(res)["msg"].get<std::string>(), HasSubstr("loopback"));
  HttpResponse ok;
  router.Dispatch(FakeRequest("POST", "/admin"), ok);
  EXPECT_EQ(ok.status, 200);
  HttpResponse plain;
  router.Dispatch(FakeRequest("GET", "/a", /*loopback=*/false), plain);
  EXPECT_EQ(plain.status, 200) << "non-admin routes answer anyone";
}

TEST(RouterTest, AdminTokenIsRequiredWhenConfigured) {
  RouterImpl router = MakeRouter("tok");
  FakeRequest no_token("POST", "/admin");
  HttpResponse res;
  router.Dispatch(no_token, res);
  EXPECT_EQ(res.status, 401);
  FakeRequest with_token("POST", "/admin");
  with_token.headers_["Authorization"] = "Bearer tok";
  HttpResponse ok;
  router.Dispatch(with_token, ok);
  EXPECT_EQ(ok.status, 200);
  FakeRequest remote("POST", "/admin", /*loopback=*/false);
  remote.headers_["Authorization"] = "Bearer tok";
  HttpResponse refused;
  router.Dispatch(remote, refused);
  EXPECT_EQ(refused.status, 403) << "the token does not open admin routes to remote peers";
}

TEST(RouterTest, AThrowingHandlerIs500) {
  RouterImpl router = MakeRouter();
  HttpResponse res;
  router.Dispatch(FakeRequest("GET", "/boom"), res);
  EXPECT_EQ(res.status, 500);
  EXPECT_THAT(Envelope(res)["msg"].get<std::string>(), HasSubstr("handler failed: x"));
}

TEST(RouterTest, DuplicateRouteIsAnError) {
  RouterImpl router = MakeRouter();
  EXPECT_TRUE(router.status().ok());
  router.Get("/a", [](const HttpRequest&, HttpResponse&) {});
  EXPECT_FALSE(router.status().ok());
  EXPECT_THAT(std::string(router.status().message()), HasSubstr("GET /a"));
}

TEST(QueryValueTest, DecodesAndFindsKeys) {
  EXPECT_EQ(QueryValue("a=1&b=x%20y+z", "b"), "x y z");
  EXPECT_EQ(QueryValue("a=1&b=2", "a"), "1");
  EXPECT_EQ(QueryValue("flag&x=1", "flag"), "");
  EXPECT_EQ(QueryValue("a=1", "c"), std::nullopt);
  EXPECT_EQ(QueryValue("a=%zz%4", "a"), "%zz%4") << "broken escapes stay as they are";
  EXPECT_EQ(QueryValue("", "a"), std::nullopt);
}

}  // namespace
}  // namespace sprocket
