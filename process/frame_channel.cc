#include "process/frame_channel.h"

#include <sys/socket.h>

#include <boost/asio/write.hpp>

namespace sprocket {

namespace asio = boost::asio;

std::shared_ptr<FrameChannel> FrameChannel::Create(asio::io_context& io, UniqueFd fd) {
  return std::shared_ptr<FrameChannel>(new FrameChannel(io, fd.Release()));
}

void FrameChannel::Start(FrameHandler on_frame, CloseHandler on_close) {
  on_frame_ = std::move(on_frame);
  on_close_ = std::move(on_close);
  Read();
}

void FrameChannel::Read() {
  fd_.async_read_some(asio::buffer(buffer_), [self = shared_from_this()](
                                                 boost::system::error_code ec, std::size_t n) {
    if (!self->fd_.is_open() || ec == asio::error::operation_aborted) {
      return;
    }
    if (ec) {
      self->fd_.close(ec);
      if (self->on_close_) {
        std::exchange(self->on_close_, nullptr)(absl::UnavailableError("channel closed"));
      }
      return;
    }
    self->decoder_.Append(std::string_view(self->buffer_.data(), n));
    self->Dispatch();
    if (self->fd_.is_open()) {
      self->Read();
    }
  });
}

void FrameChannel::Dispatch() {
  while (fd_.is_open()) {
    std::optional<Frame> frame = decoder_.Next();
    if (!frame) {
      break;
    }
    // A copy: the handler may Close() this channel, which drops on_frame_ mid-call.
    FrameHandler handler = on_frame_;
    handler(*std::move(frame));
  }
  if (!decoder_.status().ok() && fd_.is_open()) {
    boost::system::error_code ignored;
    fd_.close(ignored);
    if (on_close_) {
      std::exchange(on_close_, nullptr)(decoder_.status());
    }
  }
}

void FrameChannel::DrainNow() {
  if (!fd_.is_open()) {
    return;
  }
  for (;;) {
    const ssize_t n = ::recv(fd_.native_handle(), buffer_.data(), buffer_.size(), MSG_DONTWAIT);
    if (n <= 0) {
      break;
    }
    decoder_.Append(std::string_view(buffer_.data(), static_cast<std::size_t>(n)));
  }
  auto keep = shared_from_this();
  Dispatch();
}

void FrameChannel::Send(FrameType type, std::string_view payload) {
  if (!fd_.is_open()) {
    return;
  }
  outbox_.push_back(EncodeFrame(type, payload));
  if (!writing_) {
    Write();
  }
}

void FrameChannel::Write() {
  writing_ = true;
  asio::async_write(fd_, asio::buffer(outbox_.front()),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->writing_ = false;
                      if (ec || !self->fd_.is_open()) {
                        return;  // the read side reports the peer going away
                      }
                      self->outbox_.pop_front();
                      if (!self->outbox_.empty()) {
                        self->Write();
                      }
                    });
}

void FrameChannel::Close() {
  on_frame_ = nullptr;
  on_close_ = nullptr;
  outbox_.clear();
  boost::system::error_code ignored;
  fd_.close(ignored);
}

}  // namespace sprocket
