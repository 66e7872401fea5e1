// File: process/channel.h
//
// Framing for the socket between the manager and each child. Every frame is a 4-byte
// little-endian payload length, a 1-byte type, then the payload, so a message is always read
// whole however the stream splits it. The same framing carries the child's lifecycle reports and
// the messages the manager delivers to OnPipeReadable.
//
//   FrameDecoder decoder;
//   decoder.Append(bytes_read);
//   while (std::optional<Frame> frame = decoder.Next()) Handle(*frame);
//   if (!decoder.status().ok()) CloseChannel();
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace sprocket {

enum class FrameType : std::uint8_t {
  // child -> manager: the unit loaded and the instance was built; Run() starts now.
  kReady = 1,
  // child -> manager: the unit could not be loaded; payload is the reason.
  kLoadError = 2,
  // child -> manager: a stop was requested (SIGTERM); what follows is a deliberate exit.
  kStopping = 3,
  // manager -> child: a message for OnPipeReadable.
  kMessage = 4,
  // A control request, JSON {"id": N, "op": "...", ...}: worker -> manager (the controllers'
  // ServerControl) and master -> manager (reload, and the control API).
  kRequest = 5,
  // The answer to a kRequest, JSON {"id": N, "code": 200, "result": ..., "msg": "..."}.
  kResponse = 6,
  // child -> manager: payload is a decimal count of kMessage frames handed to OnPipeReadable.
  // Until acknowledged, a message stays with the manager and goes to the next instance if this
  // one exits, so a restart loses none.
  kAck = 7,
  // manager -> master: JSON {"event": "started" | "exited" | ..., ...} for the control API's
  // signals.
  kEvent = 8,
  // manager -> a child forked ahead of time: its predecessor has exited; load the unit now.
  kStart = 9,
};

// A bound on one frame, so a corrupt length cannot make either side allocate gigabytes.
inline constexpr std::size_t kMaxFramePayload = 16 * 1024 * 1024;
inline constexpr std::size_t kFrameHeaderSize = 5;

struct Frame {
  FrameType type;
  std::string payload;
};

// Returns the bytes of one frame.
std::string EncodeFrame(FrameType type, std::string_view payload);

// Splits a byte stream back into frames.
class FrameDecoder {
 public:
  void Append(std::string_view bytes);
  // The next complete frame, or nullopt if more bytes are needed or the stream is corrupt.
  std::optional<Frame> Next();
  // Not ok once a frame had an unknown type or an oversized length; the stream is then unusable.
  const absl::Status& status() const { return status_; }

 private:
  std::string buffer_;
  std::size_t offset_ = 0;
  absl::Status status_;
};

// Writes all of `bytes` to an fd, retrying short writes and EINTR, and waiting (poll) when a
// non-blocking fd is full.
absl::Status WriteAll(int fd, std::string_view bytes);

}  // namespace sprocket
