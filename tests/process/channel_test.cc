// Tests for process/channel.h: the frame format, the decoder against every way a stream can split,
// corrupt headers, and WriteAll over real pipes and socketpairs bigger than their buffers.
#include "process/channel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "process/unique_fd.h"

namespace sprocket {
namespace {

using ::testing::HasSubstr;

// Every frame the decoder yields until it needs more bytes.
std::vector<Frame> Drain(FrameDecoder& decoder) {
  std::vector<Frame> out;
  while (std::optional<Frame> frame = decoder.Next()) {
    out.push_back(*std::move(frame));
  }
  return out;
}

// A payload whose bytes cover every value, so byte order and signedness mistakes show.
std::string Pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>((i * 31 + 7) & 0xff);
  }
  return s;
}

// A header with an arbitrary length and type byte.
std::string RawHeader(std::uint32_t len, std::uint8_t type) {
  std::string h;
  for (int shift = 0; shift < 32; shift += 8) {
    h.push_back(static_cast<char>((len >> shift) & 0xff));
  }
  h.push_back(static_cast<char>(type));
  return h;
}

TEST(EncodeFrameTest, HeaderIsLittleEndianLengthThenType) {
  const std::string bytes = EncodeFrame(FrameType::kMessage, std::string(0x010203, 'x'));
  ASSERT_EQ(bytes.size(), kFrameHeaderSize + 0x010203);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x03);
  EXPECT_EQ(static_cast<unsigned char>(bytes[1]), 0x02);
  EXPECT_EQ(static_cast<unsigned char>(bytes[2]), 0x01);
  EXPECT_EQ(static_cast<unsigned char>(bytes[3]), 0x00);
  EXPECT_EQ(static_cast<unsigned char>(bytes[4]), static_cast<unsigned char>(FrameType::kMessage));
}

TEST(FrameDecoderTest, RoundTripsEveryType) {
  const FrameType types[] = {FrameType::kReady, FrameType::kLoadError, FrameType::kStopping,
                             FrameType::kMessage, FrameType::kRequest, FrameType::kResponse,
                             FrameType::kAck, FrameType::kEvent, FrameType::kStart};
  for (FrameType type : types) {
    FrameDecoder decoder;
    const std::string payload = Pattern(300) + "type " + std::to_string(static_cast<int>(type));
    decoder.Append(EncodeFrame(type, payload));
    std::optional<Frame> frame = decoder.Next();
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(frame->type, type);
    EXPECT_EQ(frame->payload, payload);
    EXPECT_FALSE(decoder.Next().has_value());
    EXPECT_TRUE(decoder.status().ok()) << decoder.status();
  }
}

TEST(FrameDecoderTest, EmptyPayload) {
  FrameDecoder decoder;
  const std::string bytes = EncodeFrame(FrameType::kStopping, "");
  EXPECT_EQ(bytes.size(), kFrameHeaderSize);
  decoder.Append(bytes);
  std::optional<Frame> frame = decoder.Next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->type, FrameType::kStopping);
  EXPECT_EQ(frame->payload, "");
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_TRUE(decoder.status().ok());
}

TEST(FrameDecoderTest, SeveralFramesInOneAppend) {
  FrameDecoder decoder;
  decoder.Append(EncodeFrame(FrameType::kReady, "") +
                 EncodeFrame(FrameType::kMessage, "first") +
                 EncodeFrame(FrameType::kMessage, Pattern(1000)) +
                 EncodeFrame(FrameType::kLoadError, "dlopen: no such file"));
  const std::vector<Frame> frames = Drain(decoder);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].type, FrameType::kReady);
  EXPECT_EQ(frames[0].payload, "");
  EXPECT_EQ(frames[1].type, FrameType::kMessage);
  EXPECT_EQ(frames[1].payload, "first");
  EXPECT_EQ(frames[2].type, FrameType::kMessage);
  EXPECT_EQ(frames[2].payload, Pattern(1000));
  EXPECT_EQ(frames[3].type, FrameType::kLoadError);
  EXPECT_EQ(frames[3].payload, "dlopen: no such file");
  EXPECT_TRUE(decoder.status().ok());
}

// The stream used by the split tests: short, empty and longer frames back to back.
std::string MixedStream() {
  return EncodeFrame(FrameType::kReady, "") + EncodeFrame(FrameType::kMessage, "hello") +
         EncodeFrame(FrameType::kMessage, Pattern(70)) + EncodeFrame(FrameType::kStopping, "");
}

void ExpectMixedFrames(const std::vector<Frame>& frames, const std::string& context) {
  ASSERT_EQ(frames.size(), 4u) << context;
  EXPECT_EQ(frames[0].type, FrameType::kReady) << context;
  EXPECT_EQ(frames[0].payload, "") << context;
  EXPECT_EQ(frames[1].type, FrameType::kMessage) << context;
  EXPECT_EQ(frames[1].payload, "hello") << context;
  EXPECT_EQ(frames[2].type, FrameType::kMessage) << context;
  EXPECT_EQ(frames[2].payload, Pattern(70)) << context;
  EXPECT_EQ(frames[3].type, FrameType::kStopping) << context;
  EXPECT_EQ(frames[3].payload, "") << context;
}

TEST(FrameDecoderTest, StreamSplitInTwoAtEveryByteYieldsTheSameFrames) {
  const std::string stream = MixedStream();
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    FrameDecoder decoder;
    std::vector<Frame> frames;
    decoder.Append(std::string_view(stream).substr(0, cut));
    for (Frame& f : Drain(decoder)) {
      frames.push_back(std::move(f));
    }
    decoder.Append(std::string_view(stream).substr(cut));
    for (Frame& f : Drain(decoder)) {
      frames.push_back(std::move(f));
    }
    ExpectMixedFrames(frames, "cut at " + std::to_string(cut));
    EXPECT_TRUE(decoder.status().ok());
  }
}

TEST(FrameDecoderTest, StreamFedOneByteAtATimeYieldsTheSameFrames) {
  const std::string stream = MixedStream();
  FrameDecoder decoder;
  std::vector<Frame> frames;
  for (char c : stream) {
    decoder.Append(std::string_view(&c, 1));
    for (Frame& f : Drain(decoder)) {
      frames.push_back(std::move(f));
    }
  }
  ExpectMixedFrames(frames, "byte by byte");
  EXPECT_TRUE(decoder.status().ok());
}

TEST(FrameDecoderTest, IncompleteFrameWaitsForMoreBytes) {
  FrameDecoder decoder;
  const std::string bytes = EncodeFrame(FrameType::kMessage, "abcdef");
  decoder.Append(bytes.substr(0, 3));  // part of the header
  EXPECT_FALSE(decoder.Next().has_value());
  decoder.Append(bytes.substr(3, 4));  // header done, part of the payload
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_TRUE(decoder.status().ok());
  decoder.Append(bytes.substr(7));
  std::optional<Frame> frame = decoder.Next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->payload, "abcdef");
}

TEST(FrameDecoderTest, PayloadAtTheLimitIsAccepted) {
  FrameDecoder decoder;
  const std::string payload(kMaxFramePayload, 'z');
  decoder.Append(EncodeFrame(FrameType::kMessage, payload));
  std::optional<Frame> frame = decoder.Next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->payload.size(), kMaxFramePayload);
  EXPECT_TRUE(decoder.status().ok());
}

TEST(FrameDecoderTest, LengthOverTheLimitIsDataLossAndStopsDecoding) {
  FrameDecoder decoder;
  decoder.Append(EncodeFrame(FrameType::kMessage, "before"));
  decoder.Append(RawHeader(static_cast<std::uint32_t>(kMaxFramePayload + 1),
                           static_cast<std::uint8_t>(FrameType::kMessage)));
  decoder.Append(EncodeFrame(FrameType::kMessage, "after"));

  std::optional<Frame> before = decoder.Next();
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->payload, "before");
  // The oversized header is rejected on sight, without waiting for 16 MiB to arrive.
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_EQ(decoder.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(decoder.status().message()),
              HasSubstr(std::to_string(kMaxFramePayload + 1)));
  // Nothing after it is decoded, even when more valid frames arrive.
  EXPECT_FALSE(decoder.Next().has_value());
  decoder.Append(EncodeFrame(FrameType::kReady, ""));
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_FALSE(decoder.status().ok());
}

TEST(FrameDecoderTest, MaximalLengthIsRejected) {
  FrameDecoder decoder;
  decoder.Append(RawHeader(0xffffffffu, static_cast<std::uint8_t>(FrameType::kReady)));
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_EQ(decoder.status().code(), absl::StatusCode::kDataLoss);
}

TEST(FrameDecoderTest, UnknownTypeIsDataLossAndStopsDecoding) {
  for (std::uint8_t type : {std::uint8_t{0}, std::uint8_t{10}, std::uint8_t{0xff}}) {
    FrameDecoder decoder;
    decoder.Append(RawHeader(3, type) + "abc" + EncodeFrame(FrameType::kMessage, "after"));
    EXPECT_FALSE(decoder.Next().has_value()) << "type " << int{type};
    EXPECT_EQ(decoder.status().code(), absl::StatusCode::kDataLoss) << "type " << int{type};
    EXPECT_THAT(std::string(decoder.status().message()),
                HasSubstr("unknown frame type " + std::to_string(type)));
    EXPECT_FALSE(decoder.Next().has_value()) << "type " << int{type};
  }
}

// Reads from `fd` until EOF.
std::string ReadToEof(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Writes `bytes` to `write_end` with WriteAll from another thread while this one reads, then
// returns what arrived; the write end is closed by the writer so the read sees EOF.
std::string TransferThrough(UniqueFd write_end, int read_end, const std::string& bytes,
                            absl::Status& write_status) {
  std::thread writer([&] {
    write_status = WriteAll(write_end.get(), bytes);
    write_end.Reset();
  });
  std::string received = ReadToEof(read_end);
  writer.join();
  return received;
}

TEST(WriteAllTest, PayloadBiggerThanThePipeBufferArrivesWhole) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  const int pipe_size = ::fcntl(write_end.get(), F_GETPIPE_SZ);
  ASSERT_GT(pipe_size, 0);

  const std::string payload = Pattern(static_cast<std::size_t>(pipe_size) * 8 + 123);
  const std::string stream = EncodeFrame(FrameType::kMessage, payload);
  absl::Status write_status = absl::UnknownError("writer did not run");
  const std::string received =
      TransferThrough(std::move(write_end), read_end.get(), stream, write_status);
  EXPECT_TRUE(write_status.ok()) << write_status;
  ASSERT_EQ(received.size(), stream.size());
  EXPECT_TRUE(received == stream);

  FrameDecoder decoder;
  decoder.Append(received);
  std::optional<Frame> frame = decoder.Next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->type, FrameType::kMessage);
  EXPECT_TRUE(frame->payload == payload);
}

TEST(WriteAllTest, SeveralFramesOverASocketpairDecodeInOrder) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd reader(fds[0]);
  UniqueFd writer(fds[1]);
  int sndbuf = 0;
  socklen_t len = sizeof(sndbuf);
  ASSERT_EQ(::getsockopt(writer.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, &len), 0);

  std::string stream;
  const std::size_t big = static_cast<std::size_t>(sndbuf) * 4;
  for (int i = 0; i < 3; ++i) {
    stream += EncodeFrame(FrameType::kMessage, Pattern(big + i));
  }
  absl::Status write_status = absl::UnknownError("writer did not run");
  const std::string received =
      TransferThrough(std::move(writer), reader.get(), stream, write_status);
  EXPECT_TRUE(write_status.ok()) << write_status;

  FrameDecoder decoder;
  decoder.Append(received);
  const std::vector<Frame> frames = Drain(decoder);
  ASSERT_EQ(frames.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(frames[i].payload.size(), big + i);
    EXPECT_TRUE(frames[i].payload == Pattern(big + i)) << "frame " << i;
  }
  EXPECT_TRUE(decoder.status().ok());
}

TEST(WriteAllTest, EmptyWriteSucceedsAndWritesNothing) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  EXPECT_TRUE(WriteAll(write_end.get(), "").ok());
  char c;
  EXPECT_EQ(::read(read_end.get(), &c, 1), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST(WriteAllTest, BadFdReportsTheErrno) {
  const absl::Status s = WriteAll(-1, "x");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("write"));
  // EBADF, converted once by absl::ErrnoToStatus.
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
}

}  // namespace
}  // namespace sprocket
