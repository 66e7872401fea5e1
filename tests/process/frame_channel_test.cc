// FrameChannel over a real socketpair: frames in order, a descriptor travelling with its frame,
// and the last frames before the peer's end still delivered.
#include "process/frame_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sprocket {
namespace {

struct Pair {
  Pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    a = FrameChannel::Create(io, UniqueFd(fds[0]));
    b = FrameChannel::Create(io, UniqueFd(fds[1]));
  }
  boost::asio::io_context io;
  std::shared_ptr<FrameChannel> a, b;
};

TEST(FrameChannelTest, DeliversFramesInOrder) {
  Pair p;
  std::vector<std::string> got;
  p.b->Start([&](Frame f) {
    got.push_back(f.payload);
    if (got.size() == 3) {
      p.io.stop();
    }
  }, [](const absl::Status&) {});
  p.a->Send(FrameType::kMessage, "one");
  p.a->Send(FrameType::kMessage, std::string(200000, 'x'));  // bigger than the socket buffer
  p.a->Send(FrameType::kMessage, "three");
  p.io.run_for(std::chrono::seconds(5));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "one");
  EXPECT_EQ(got[1].size(), 200000u);
  EXPECT_EQ(got[2], "three");
}

TEST(FrameChannelTest, ADescriptorArrivesWithItsFrame) {
  Pair p;
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  UniqueFd received;
  std::vector<std::string> payloads;
  // As the contract says: only the handler of a frame that carries a descriptor takes one.
  p.b->Start([&](Frame f) {
    payloads.push_back(f.payload);
    if (f.payload == "with fd") {
      received = p.b->TakeFd();
      p.io.stop();
    }
  }, [](const absl::Status&) {});
  p.a->Send(FrameType::kEvent, "before");  // a frame without a descriptor goes first
  p.a->SendWithFd(FrameType::kEvent, "with fd", std::move(write_end));
  p.io.run_for(std::chrono::seconds(5));
  EXPECT_EQ(payloads, (std::vector<std::string>{"before", "with fd"}));
  EXPECT_FALSE(p.b->TakeFd()) << "one descriptor sent, one received";
  ASSERT_TRUE(received);
  ASSERT_EQ(::write(received.get(), "ok", 2), 2);
  char buf[2];
  ASSERT_EQ(::read(read_end.get(), buf, 2), 2);
  EXPECT_EQ(std::string(buf, 2), "ok");
}

TEST(FrameChannelTest, FramesWrittenJustBeforeThePeerClosedAreDelivered) {
  Pair p;
  std::vector<std::string> got;
  bool closed = false;
  p.b->Start([&](Frame f) { got.push_back(f.payload); },
             [&](const absl::Status&) {
               closed = true;
               p.io.stop();
             });
  p.a->Send(FrameType::kLoadError, "last words");
  p.io.poll();  // flush the write
  p.a->Close();
  p.io.run_for(std::chrono::seconds(5));
  EXPECT_TRUE(closed);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "last words");
}

}  // namespace
}  // namespace sprocket
