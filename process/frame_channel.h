// File: process/frame_channel.h
//
// One end of a framed socket (process/channel.h) on an Asio loop: frames are read as they arrive
// and handed to a callback, and writes are queued so a slow peer never blocks the loop. The
// manager holds one per child and one to the master; the master holds one to the manager.
//
//   auto channel = FrameChannel::Create(io, std::move(fd));
//   channel->Start([](Frame f) { ... }, [](absl::Status why) { ... });
//   channel->Send(FrameType::kRequest, R"({"id":1,"op":"reload"})");
//
// Callbacks run on the loop's thread; the channel keeps itself alive while operations are
// pending, so it may be dropped from inside a callback.
#pragma once

#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "absl/status/status.h"
#include "process/channel.h"
#include "process/unique_fd.h"

namespace sprocket {

class FrameChannel : public std::enable_shared_from_this<FrameChannel> {
 public:
  using FrameHandler = std::function<void(Frame)>;
  using CloseHandler = std::function<void(const absl::Status&)>;

  static std::shared_ptr<FrameChannel> Create(boost::asio::io_context& io, UniqueFd fd);

  // Starts reading. `on_close` runs once, on EOF, a read error or a corrupt stream (not on Close).
  void Start(FrameHandler on_frame, CloseHandler on_close);
  // Queues one frame. Frames are written whole and in order.
  void Send(FrameType type, std::string_view payload);
  // Queues one frame that carries a file descriptor (SCM_RIGHTS) to the peer, which gets it
  // with TakeFd() when the frame arrives.
  void SendWithFd(FrameType type, std::string_view payload, UniqueFd fd);
  // The oldest descriptor received and not yet taken (-1 if none). Call it only from the handler
  // of a frame that carries one: descriptors are matched to frames by order, not by offset.
  UniqueFd TakeFd();
  // Reads and dispatches whatever the peer already wrote, without waiting: a child's last words
  // before it exits must be seen before its exit is judged.
  void DrainNow();
  // Stops reading and writing; pending writes are dropped. Callbacks are not called afterwards.
  void Close();
  bool open() const { return fd_.is_open(); }

 private:
  FrameChannel(boost::asio::io_context& io, int fd) : fd_(io, fd) {}
  void Read();
  // Reads what is there (and any descriptors) without blocking. False on EOF or a hard error.
  bool ReceiveNow();
  void Dispatch();
  void Write();
  void WriteWithFd();
  void Fail(const absl::Status& why);

  struct Outgoing {
    std::string bytes;
    UniqueFd fd;  // sent with the first byte, or -1
  };

  boost::asio::posix::stream_descriptor fd_;
  std::array<char, 16 * 1024> buffer_{};
  FrameDecoder decoder_;
  FrameHandler on_frame_;
  CloseHandler on_close_;
  std::deque<Outgoing> outbox_;
  std::deque<UniqueFd> received_fds_;
  bool writing_ = false;
};

}  // namespace sprocket
