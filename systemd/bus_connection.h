// File: systemd/bus_connection.h
//
// One sd-bus connection driven by an Asio loop: the bus's fd is watched for what
// sd_bus_get_events() asks, its timeout runs on a steady_timer, and sd_bus_process() runs on
// the loop's thread whenever either fires. sd-bus's own event loop (sd-event) is not used: each
// sprocket process has exactly one loop, Asio's.
//
//   auto bus = BusConnection::Attach(io, raw_bus, [] { LOG(INFO) << "peer went away"; });
//
// Limits: the bus must be started (sd_bus_start) and used only on the loop's thread.
#pragma once

#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

struct sd_bus;

namespace sprocket {

class BusConnection : public std::enable_shared_from_this<BusConnection> {
 public:
  // Takes the caller's reference to `bus` (it is flushed and closed when this goes away).
  // `on_closed` runs once when the peer disconnects or the connection fails.
  static std::shared_ptr<BusConnection> Attach(boost::asio::io_context& io, sd_bus* bus,
                                               std::function<void()> on_closed);
  ~BusConnection();
  BusConnection(const BusConnection&) = delete;
  BusConnection& operator=(const BusConnection&) = delete;

  sd_bus* bus() const { return bus_; }
  // Stops watching and closes the connection; on_closed is not called.
  void Close();
  // Call after queueing a message outside a bus callback (an async reply, a signal): the wait
  // in progress may be for reading only, and the message must still be flushed.
  void Kick();

 private:
  BusConnection(boost::asio::io_context& io, sd_bus* bus, int fd, std::function<void()> on_closed);
  void Process();
  void Arm();
  void Wake(const boost::system::error_code& ec);

  sd_bus* bus_;
  boost::asio::posix::stream_descriptor fd_;  // sd-bus owns the fd: released, never closed
  boost::asio::steady_timer timer_;
  std::function<void()> on_closed_;
  bool waiting_ = false;
};

}  // namespace sprocket
