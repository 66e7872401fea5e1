// File: tests/integration/http_client.h
//
// A small blocking HTTP/1.1 client for the integration tests, on Boost.Beast: one keep-alive
// connection that reconnects when the server closes it, and a raw-bytes helper for malformed
// requests.
//
//   HttpConnection c("127.0.0.1:40123");
//   absl::StatusOr<HttpReply> r = c.Request("GET", "/process");
#pragma once

#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace sprocket::testing {

struct HttpReply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  bool keep_alive = false;
  // The body parsed as JSON (discarded when it is not JSON).
  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
};

class HttpConnection {
 public:
  explicit HttpConnection(std::string address);  // "HOST:PORT"
  ~HttpConnection();

  // Sends one request on the open connection (connecting first if needed). A response with
  // "Connection: close" leaves the connection closed; the next request reconnects.
  absl::StatusOr<HttpReply> Request(const std::string& method, const std::string& target,
                                    const std::string& body = "",
                                    const std::map<std::string, std::string>& headers = {});
  bool connected() const;
  // How many TCP connections this object opened.
  int connects() const { return connects_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int connects_ = 0;
};

// One-shot request on a fresh connection.
absl::StatusOr<HttpReply> HttpRequestOnce(const std::string& address, const std::string& method,
                                          const std::string& target, const std::string& body = "",
                                          const std::map<std::string, std::string>& headers = {});

// Writes `bytes` as they are, then reads one response (or EOF).
absl::StatusOr<HttpReply> SendRaw(const std::string& address, const std::string& bytes);

}  // namespace sprocket::testing
