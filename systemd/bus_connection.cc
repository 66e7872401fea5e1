#include "systemd/bus_connection.h"

#include <poll.h>
#include <systemd/sd-bus.h>

#include <chrono>
#include <cstdint>
#include <ctime>

#include <boost/asio/post.hpp>
#include <glog/logging.h>

namespace sprocket {

namespace asio = boost::asio;

std::shared_ptr<BusConnection> BusConnection::Attach(asio::io_context& io, sd_bus* bus,
                                                     std::function<void()> on_closed) {
  std::shared_ptr<BusConnection> c(
      new BusConnection(io, bus, sd_bus_get_fd(bus), std::move(on_closed)));
  c->Process();
  return c;
}

BusConnection::BusConnection(asio::io_context& io, sd_bus* bus, int fd,
                             std::function<void()> on_closed)
    : bus_(bus), fd_(io, fd), timer_(io), on_closed_(std::move(on_closed)) {}

BusConnection::~BusConnection() { Close(); }

void BusConnection::Close() {
  if (bus_ == nullptr) {
    return;
  }
  boost::system::error_code ignored;
  fd_.cancel(ignored);
  (void)fd_.release();
  timer_.cancel();
  sd_bus_flush_close_unref(std::exchange(bus_, nullptr));
}

void BusConnection::Kick() {
  // sd-bus writes a message at once when it can; only a partial write leaves output queued,
  // and only then must the wait in progress (for reading) become a wait for writing.
  if (bus_ == nullptr || !(sd_bus_get_events(bus_) & POLLOUT)) {
    return;
  }
  waiting_ = false;
  boost::system::error_code ignored;
  fd_.cancel(ignored);
  timer_.cancel();
  asio::post(fd_.get_executor(), [self = shared_from_this()] {
    if (self->bus_ != nullptr && !self->waiting_) {
      self->Process();
    }
  });
}

void BusConnection::Process() {
  for (;;) {
    const int r = sd_bus_process(bus_, nullptr);
    if (r < 0) {
      VLOG(1) << "bus connection ended: " << strerror(-r);
      auto on_closed = std::exchange(on_closed_, nullptr);
      Close();
      if (on_closed) {
        on_closed();
      }
      return;
    }
    if (r == 0) {
      break;
    }
  }
  Arm();
}

void BusConnection::Arm() {
  if (bus_ == nullptr || waiting_) {
    return;
  }
  waiting_ = true;
  const int events = sd_bus_get_events(bus_);
  auto self = shared_from_this();
  auto wake = [self](const boost::system::error_code& ec) { self->Wake(ec); };
  if (events & POLLOUT) {
    fd_.async_wait(asio::posix::descriptor_base::wait_write, wake);
  } else {
    fd_.async_wait(asio::posix::descriptor_base::wait_read, wake);
  }
  std::uint64_t until = UINT64_MAX;
  if (sd_bus_get_timeout(bus_, &until) >= 0 && until != UINT64_MAX) {
    // sd-bus gives an absolute CLOCK_MONOTONIC time, which is steady_clock's clock on Linux.
    timer_.expires_at(std::chrono::steady_clock::time_point(std::chrono::microseconds(until)));
    timer_.async_wait(wake);
  }
}

void BusConnection::Wake(const boost::system::error_code& ec) {
  if (ec == asio::error::operation_aborted || bus_ == nullptr || !waiting_) {
    return;
  }
  waiting_ = false;
  boost::system::error_code ignored;
  fd_.cancel(ignored);
  timer_.cancel();
  Process();
}

}  // namespace sprocket
