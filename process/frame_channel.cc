#include "process/frame_channel.h"

#include <errno.h>
#include <string.h>
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

// Waits for readability, then reads with recvmsg: a plain read would drop descriptors.
void FrameChannel::Read() {
  fd_.async_wait(asio::posix::descriptor_base::wait_read,
                 [self = shared_from_this()](boost::system::error_code ec) {
                   if (!self->fd_.is_open() || ec == asio::error::operation_aborted) {
                     return;
                   }
                   // Frames that came with the end (a child's last words) are handled first.
                   const bool open = !ec && self->ReceiveNow();
                   self->Dispatch();
                   if (!open) {
                     self->Fail(absl::UnavailableError("channel closed"));
                   } else if (self->fd_.is_open()) {
                     self->Read();
                   }
                 });
}

bool FrameChannel::ReceiveNow() {
  for (;;) {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    iovec iov{buffer_.data(), buffer_.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(fd_.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
    if (n == 0) {
      return false;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
          int fd;
          ::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          received_fds_.emplace_back(fd);
        }
      }
    }
    decoder_.Append(std::string_view(buffer_.data(), static_cast<std::size_t>(n)));
  }
}

void FrameChannel::Fail(const absl::Status& why) {
  boost::system::error_code ignored;
  fd_.close(ignored);
  if (on_close_) {
    std::exchange(on_close_, nullptr)(why);
  }
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
    Fail(decoder_.status());
  }
}

void FrameChannel::DrainNow() {
  if (!fd_.is_open()) {
    return;
  }
  auto keep = shared_from_this();
  (void)ReceiveNow();
  Dispatch();
}

UniqueFd FrameChannel::TakeFd() {
  if (received_fds_.empty()) {
    return UniqueFd();
  }
  UniqueFd fd = std::move(received_fds_.front());
  received_fds_.pop_front();
  return fd;
}

void FrameChannel::Send(FrameType type, std::string_view payload) {
  SendWithFd(type, payload, UniqueFd());
}

void FrameChannel::SendWithFd(FrameType type, std::string_view payload, UniqueFd fd) {
  if (!fd_.is_open()) {
    return;
  }
  outbox_.push_back({EncodeFrame(type, payload), std::move(fd)});
  if (!writing_) {
    Write();
  }
}

void FrameChannel::Write() {
  if (outbox_.front().fd) {
    WriteWithFd();
    return;
  }
  writing_ = true;
  asio::async_write(fd_, asio::buffer(outbox_.front().bytes),
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

// The descriptor goes with the frame's first bytes (sendmsg); whatever sendmsg could not take
// is written like any other frame.
void FrameChannel::WriteWithFd() {
  Outgoing& next = outbox_.front();
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{next.bytes.data(), next.bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  const int raw = next.fd.get();
  ::memcpy(CMSG_DATA(c), &raw, sizeof(int));
  const ssize_t n = ::sendmsg(fd_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    return;  // the read side reports the peer going away
  }
  if (n > 0) {
    next.fd.Reset();
    next.bytes.erase(0, static_cast<std::size_t>(n));
  }
  writing_ = true;
  // Socket full: try again when writable. Otherwise go on with the rest, or the next frame.
  fd_.async_wait(asio::posix::descriptor_base::wait_write,
                 [self = shared_from_this()](boost::system::error_code ec) {
                   self->writing_ = false;
                   if (ec || !self->fd_.is_open()) {
                     return;
                   }
                   if (self->outbox_.front().bytes.empty()) {
                     self->outbox_.pop_front();
                   }
                   if (!self->outbox_.empty()) {
                     self->Write();
                   }
                 });
}

void FrameChannel::Close() {
  on_frame_ = nullptr;
  on_close_ = nullptr;
  outbox_.clear();
  received_fds_.clear();
  boost::system::error_code ignored;
  fd_.close(ignored);
}

}  // namespace sprocket
