#include "process/channel.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "absl/strings/str_format.h"

namespace sprocket {

std::string EncodeFrame(FrameType type, std::string_view payload) {
  std::string out;
  out.reserve(kFrameHeaderSize + payload.size());
  const auto len = static_cast<std::uint32_t>(payload.size());
  for (int shift = 0; shift < 32; shift += 8) {
    out.push_back(static_cast<char>((len >> shift) & 0xff));
  }
  out.push_back(static_cast<char>(type));
  out.append(payload);
  return out;
}

void FrameDecoder::Append(std::string_view bytes) {
  // Drop what was consumed before growing, so a long-lived channel's buffer stays small.
  if (offset_ > 0) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Frame> FrameDecoder::Next() {
  if (!status_.ok() || buffer_.size() - offset_ < kFrameHeaderSize) {
    return std::nullopt;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + offset_);
  const std::uint32_t len = p[0] | (p[1] << 8) | (p[2] << 16) | (std::uint32_t{p[3]} << 24);
  const std::uint8_t type = p[4];
  if (len > kMaxFramePayload) {
    status_ = absl::DataLossError(absl::StrFormat("frame of %u bytes exceeds the limit", len));
    return std::nullopt;
  }
  if (type < static_cast<std::uint8_t>(FrameType::kReady) ||
      type > static_cast<std::uint8_t>(FrameType::kStart)) {
    status_ = absl::DataLossError(absl::StrFormat("unknown frame type %d", type));
    return std::nullopt;
  }
  if (buffer_.size() - offset_ < kFrameHeaderSize + len) {
    return std::nullopt;
  }
  Frame frame{static_cast<FrameType>(type), buffer_.substr(offset_ + kFrameHeaderSize, len)};
  offset_ += kFrameHeaderSize + len;
  return frame;
}

absl::Status WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, -1);
      continue;
    }
    if (n < 0) {
      return absl::ErrnoToStatus(errno, "write");
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace sprocket
