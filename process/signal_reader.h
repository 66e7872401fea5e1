// File: process/signal_reader.h
//
// Delivers signals as ordinary event-loop callbacks through a signalfd, so a signal handler never
// runs sprocket code. The signals must already be blocked (BlockLoopSignals() in main, inherited
// by every forked process); the kernel then queues them on the fd instead of interrupting.
//
//   absl::StatusOr<std::unique_ptr<SignalReader>> signals = SignalReader::Open(
//       io, LoopSignals(), [&](int sig) { if (sig == SIGTERM) Shutdown(); });
//
// Limits: one per process and io_context; the callback runs on the loop's thread.
#pragma once

#include <sys/signalfd.h>

#include <csignal>
#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "absl/status/statusor.h"

namespace sprocket {

class SignalReader {
 public:
  static absl::StatusOr<std::unique_ptr<SignalReader>> Open(boost::asio::io_context& io,
                                                            const sigset_t& signals,
                                                            std::function<void(int)> on_signal);
  // Stops delivering; pending signals stay queued on the (closed) fd and are dropped.
  void Close();

 private:
  SignalReader(boost::asio::io_context& io, int fd, std::function<void(int)> on_signal)
      : fd_(io, fd), on_signal_(std::move(on_signal)) {}
  void Read();

  boost::asio::posix::stream_descriptor fd_;
  std::function<void(int)> on_signal_;
  signalfd_siginfo info_{};
};

}  // namespace sprocket
