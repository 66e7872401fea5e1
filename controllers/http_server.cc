// Boost.Beast is heavy to compile: every Beast template sprocket uses lives in this one file.
#include "controllers/http_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <unordered_set>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"
#include "controllers/router.h"

namespace sprocket {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using BeastRequest = http::request<http::string_body>;

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

// The controller-facing view of a Beast request; valid while the request is.
class RequestView final : public HttpRequest {
 public:
  RequestView(const BeastRequest& request, bool loopback) : request_(request), loopback_(loopback) {
    const std::string_view target = View(request_.target());
    const std::size_t q = target.find('?');
    path_ = target.substr(0, q);
    query_ = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  }
  std::string_view Method() const override { return View(request_.method_string()); }
  std::string_view Path() const override { return path_; }
  std::optional<std::string> Query(std::string_view key) const override {
    return QueryValue(query_, key);
  }
  std::string_view Header(std::string_view name) const override {
    auto it = request_.find(beast::string_view(name.data(), name.size()));
    return it == request_.end() ? std::string_view() : View(it->value());
  }
  std::string_view Body() const override { return request_.body(); }
  bool FromLoopback() const override { return loopback_; }

 private:
  const BeastRequest& request_;
  bool loopback_;
  std::string_view path_;
  std::string_view query_;
};

bool IsLoopback(const tcp::endpoint& peer) {
  const asio::ip::address a = peer.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
  }
  return a.is_loopback();
}

}  // namespace

class Session;

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(asio::io_context& io, const HttpConfig& config, Handler handler)
      : io_(io), config_(config), handler_(std::move(handler)), deadline_(io) {}

  absl::Status Listen(const std::vector<int>& fds);
  void Drain(std::function<void()> on_drained);
  void Accept(tcp::acceptor& acceptor);
  void ResumeAccepting();
  void Add(Session* s) { sessions_.insert(s); }
  void Remove(Session* s);
  void Sweep();

  asio::io_context& io_;
  const HttpConfig& config_;
  Handler handler_;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  std::vector<tcp::acceptor*> paused_;
  std::unordered_set<Session*> sessions_;
  bool draining_ = false;
  std::function<void()> on_drained_;
  asio::steady_timer deadline_;
  asio::steady_timer sweep_{io_};
};


class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<HttpServer::Impl> server, tcp::socket socket)
      : server_(std::move(server)), socket_(std::move(socket)) {
    boost::system::error_code ec;
    loopback_ = IsLoopback(socket_.remote_endpoint(ec)) && !ec;
    server_->Add(this);
  }
  ~Session() { server_->Remove(this); }

  void Start() { Read(); }
  void Close() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }
  // The sweep closes a session whose deadline passed: a per-operation timer would cost more
  // than the request itself.
  bool Expired(std::chrono::steady_clock::time_point now) const { return now > deadline_; }

 private:
  void Read();
  void OnRead(beast::error_code ec);
  void Respond(HttpResponse& response, bool keep_alive);
  void Fail(int status, std::string msg);

  std::shared_ptr<HttpServer::Impl> server_;
  tcp::socket socket_;
  std::chrono::steady_clock::time_point deadline_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  bool loopback_ = false;
  bool first_ = true;
};

void Session::Read() {
  const HttpConfig& config = server_->config_;
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(config.max_header_bytes));
  parser_->body_limit(config.max_body_bytes);
  // The first request must come promptly; later ones may wait for the keep-alive timeout.
  deadline_ = std::chrono::steady_clock::now() +
              (first_ ? config.request_timeout : config.keep_alive_timeout);
  http::async_read(socket_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                     self->OnRead(ec);
                   });
}

void Session::OnRead(beast::error_code ec) {
  first_ = false;
  if (ec == http::error::body_limit) {
    return Fail(413, absl::StrCat("request body exceeds ", server_->config_.max_body_bytes,
                                  " bytes"));
  }
  if (ec == http::error::header_limit) {
    return Fail(431, absl::StrCat("request headers exceed ", server_->config_.max_header_bytes,
                                  " bytes"));
  }
  if (ec && ec.category() == http::make_error_code(http::error::bad_method).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message) {
    return Fail(400, absl::StrCat("malformed request: ", ec.message()));
  }
  if (ec) {
    // Closed by the peer, timed out, or cut off mid-request: nobody to answer.
    Close();
    return;
  }
  RequestView view(parser_->get(), loopback_);
  HttpResponse response;
  server_->handler_(view, response);
  Respond(response, parser_->get().keep_alive() && !server_->draining_);
}

void Session::Respond(HttpResponse& response, bool keep_alive) {
  response_ = {};
  response_.version(11);
  response_.result(static_cast<unsigned>(response.status));
  response_.set(http::field::server, "sprocket");
  response_.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) {
    response_.set(name, value);
  }
  response_.body() = std::move(response.body);
  response_.keep_alive(keep_alive);
  response_.prepare_payload();
  deadline_ = std::chrono::steady_clock::now() + server_->config_.request_timeout;
  http::async_write(socket_, response_,
                    [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                      if (ec || !keep_alive) {
                        self->Close();
                        return;
                      }
                      self->Read();
                    });
}

void Session::Fail(int status, std::string msg) {
  HttpResponse response;
  response.Json(status, nullptr, msg);
  Respond(response, /*keep_alive=*/false);
}

// Timeouts are enforced by this sweep, twice a second, so they are exact to about 0.5 s.
void HttpServer::Impl::Sweep() {
  sweep_.expires_after(std::chrono::milliseconds(500));
  sweep_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self) {
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    std::vector<Session*> expired;
    for (Session* s : self->sessions_) {
      if (s->Expired(now)) {
        expired.push_back(s);
      }
    }
    for (Session* s : expired) {
      s->Close();
    }
    self->Sweep();
  });
}

absl::Status HttpServer::Impl::Listen(const std::vector<int>& fds) {
  for (int fd : fds) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("getsockname(", fd, ")"));
    }
    const int copy = ::dup(fd);
    if (copy < 0) {
      return absl::ErrnoToStatus(errno, "dup");
    }
    auto acceptor = std::make_unique<tcp::acceptor>(io_);
    boost::system::error_code ec;
    acceptor->assign(addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), copy, ec);
    if (ec) {
      ::close(copy);
      return absl::InternalError(absl::StrCat("listen socket ", fd, ": ", ec.message()));
    }
    acceptors_.push_back(std::move(acceptor));
  }
  for (auto& acceptor : acceptors_) {
    Accept(*acceptor);
  }
  Sweep();
  return absl::OkStatus();
}

void HttpServer::Impl::Accept(tcp::acceptor& acceptor) {
  if (sessions_.size() >= static_cast<std::size_t>(config_.max_connections)) {
    paused_.push_back(&acceptor);  // resumed when a connection closes
    return;
  }
  acceptor.async_accept([self = shared_from_this(), &acceptor](boost::system::error_code ec,
                                                               tcp::socket socket) {
    if (!ec) {
      // Accepted just as the drain began: still ours to answer (with Connection: close).
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(self, std::move(socket))->Start();
    }
    if (!self->draining_ && ec != asio::error::operation_aborted) {
      self->Accept(acceptor);
    }
  });
}

void HttpServer::Impl::ResumeAccepting() {
  for (tcp::acceptor* acceptor : std::exchange(paused_, {})) {
    Accept(*acceptor);
  }
}

void HttpServer::Impl::Remove(Session* s) {
  sessions_.erase(s);
  if (!draining_) {
    ResumeAccepting();
  } else if (sessions_.empty() && on_drained_) {
    deadline_.cancel();
    asio::post(io_, std::exchange(on_drained_, nullptr));
  }
}

void HttpServer::Impl::Drain(std::function<void()> on_drained) {
  draining_ = true;
  on_drained_ = std::move(on_drained);
  for (auto& acceptor : acceptors_) {
    boost::system::error_code ignored;
    acceptor->close(ignored);
  }
  paused_.clear();
  if (sessions_.empty()) {
    asio::post(io_, std::exchange(on_drained_, nullptr));
    return;
  }
  deadline_.expires_after(config_.max_wait_time);
  deadline_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec) {
      return;
    }
    // Still idle at the deadline: closed without a response (nothing was asked of them).
    std::vector<Session*> left(self->sessions_.begin(), self->sessions_.end());
    for (Session* s : left) {
      s->Close();
    }
  });
}

HttpServer::HttpServer(asio::io_context& io, const HttpConfig& config, Handler handler)
    : impl_(std::make_shared<Impl>(io, config, std::move(handler))) {}

HttpServer::~HttpServer() = default;

absl::Status HttpServer::Listen(const std::vector<int>& listen_fds) {
  return impl_->Listen(listen_fds);
}

void HttpServer::Drain(std::function<void()> on_drained) { impl_->Drain(std::move(on_drained)); }

}  // namespace sprocket
