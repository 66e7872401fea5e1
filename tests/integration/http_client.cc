#include "tests/integration/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace sprocket::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

tcp::endpoint Endpoint(const std::string& address) {
  const std::size_t colon = address.rfind(':');
  return tcp::endpoint(asio::ip::make_address(address.substr(0, colon)),
                       static_cast<unsigned short>(std::stoi(address.substr(colon + 1))));
}

HttpReply ToReply(const http::response<http::string_body>& res) {
  HttpReply reply;
  reply.status = static_cast<int>(res.result_int());
  reply.body = res.body();
  reply.keep_alive = res.keep_alive();
  for (const auto& field : res) {
    reply.headers[absl::AsciiStrToLower(std::string(field.name_string()))] =
        std::string(field.value());
  }
  return reply;
}

}  // namespace

struct HttpConnection::Impl {
  explicit Impl(std::string a) : address(std::move(a)), socket(io) {}
  std::string address;
  asio::io_context io;
  tcp::socket socket;
  beast::flat_buffer buffer;
};

HttpConnection::HttpConnection(std::string address)
    : impl_(std::make_unique<Impl>(std::move(address))) {}

HttpConnection::~HttpConnection() = default;

bool HttpConnection::connected() const { return impl_->socket.is_open(); }

absl::StatusOr<HttpReply> HttpConnection::Request(
    const std::string& method, const std::string& target, const std::string& body,
    const std::map<std::string, std::string>& headers) {
  beast::error_code ec;
  if (!impl_->socket.is_open()) {
    impl_->socket.connect(Endpoint(impl_->address), ec);
    if (ec) {
      impl_->socket.close();
      return absl::UnavailableError(absl::StrCat("connect: ", ec.message()));
    }
    impl_->buffer.clear();
    ++connects_;
  }
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, impl_->address);
  for (const auto& [name, value] : headers) {
    req.set(name, value);
  }
  req.body() = body;
  req.keep_alive(true);
  req.prepare_payload();
  http::write(impl_->socket, req, ec);
  http::response<http::string_body> res;
  if (!ec) {
    http::read(impl_->socket, impl_->buffer, res, ec);
  }
  if (ec) {
    impl_->socket.close();
    return absl::UnavailableError(absl::StrCat(method, " ", target, ": ", ec.message()));
  }
  if (!res.keep_alive()) {
    impl_->socket.close();
  }
  return ToReply(res);
}

absl::StatusOr<HttpReply> HttpRequestOnce(const std::string& address, const std::string& method,
                                          const std::string& target, const std::string& body,
                                          const std::map<std::string, std::string>& headers) {
  HttpConnection c(address);
  return c.Request(method, target, body, headers);
}

absl::StatusOr<HttpReply> SendRaw(const std::string& address, const std::string& bytes) {
  asio::io_context io;
  tcp::socket socket(io);
  beast::error_code ec;
  socket.connect(Endpoint(address), ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("connect: ", ec.message()));
  }
  asio::write(socket, asio::buffer(bytes), ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("read: ", ec.message()));
  }
  return ToReply(res);
}

}  // namespace sprocket::testing
