#include "controllers/router.h"

#include <exception>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sprocket {

void RouterImpl::Route(std::string_view method, std::string_view path, HttpHandler handler,
                       RouteOptions options) {
  auto& methods = routes_[std::string(path)];
  auto [it, inserted] = methods.emplace(std::string(method), Entry{std::move(handler), options});
  if (!inserted && status_.ok()) {
    status_ = absl::AlreadyExistsError(absl::StrCat("route ", std::string(method), " ", std::string(path),
                                                    " is registered by two controllers"));
  }
  count_ += inserted ? 1 : 0;
}

bool RouterImpl::Authorized(const HttpRequest& request, HttpResponse& response) const {
  if (!request.FromLoopback()) {
    response.Json(403, nullptr, "this route answers only loopback clients");
    return false;
  }
  if (!admin_token_.empty() && request.Header("Authorization") != "Bearer " + admin_token_) {
    response.Json(401, nullptr, "this route needs 'Authorization: Bearer <admin_token>'");
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return false;
  }
  return true;
}

void RouterImpl::Dispatch(const HttpRequest& request, HttpResponse& response) const {
  auto path = routes_.find(request.Path());
  if (path == routes_.end()) {
    response.Json(404, nullptr, absl::StrCat("no route for ", std::string(request.Method()), " ",
                                             std::string(request.Path())));
    return;
  }
  auto entry = path->second.find(request.Method());
  if (entry == path->second.end()) {
    std::vector<std::string> allowed;
    for (const auto& [method, unused] : path->second) {
      allowed.push_back(method);
    }
    response.Json(405, nullptr, absl::StrCat(std::string(request.Path()), " allows ",
                                             absl::StrJoin(allowed, ", ")));
    response.headers.emplace_back("Allow", absl::StrJoin(allowed, ", "));
    return;
  }
  if (entry->second.options.admin && !Authorized(request, response)) {
    return;
  }
  try {
    entry->second.handler(request, response);
  } catch (const std::exception& e) {
    response = HttpResponse();
    response.Json(500, nullptr, absl::StrCat("handler failed: ", e.what()));
  } catch (...) {
    response = HttpResponse();
    response.Json(500, nullptr, "handler failed with a non-standard exception");
  }
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

std::string Decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> QueryValue(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (Decode(pair.substr(0, eq)) == key) {
      return eq == std::string_view::npos ? std::string() : Decode(pair.substr(eq + 1));
    }
  }
  return std::nullopt;
}

}  // namespace sprocket
