#include "process/signal_reader.h"

#include <errno.h>

namespace sprocket {

absl::StatusOr<std::unique_ptr<SignalReader>> SignalReader::Open(
    boost::asio::io_context& io, const sigset_t& signals, std::function<void(int)> on_signal) {
  const int fd = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, "signalfd");
  }
  std::unique_ptr<SignalReader> reader(new SignalReader(io, fd, std::move(on_signal)));
  reader->Read();
  return reader;
}

void SignalReader::Close() {
  boost::system::error_code ignored;
  fd_.close(ignored);
}

void SignalReader::Read() {
  fd_.async_read_some(boost::asio::buffer(&info_, sizeof(info_)),
                      [this](boost::system::error_code ec, std::size_t n) {
                        if (ec || n != sizeof(info_)) {
                          return;
                        }
                        // Re-arm first: the callback may Close() us.
                        const int sig = static_cast<int>(info_.ssi_signo);
                        Read();
                        on_signal_(sig);
                      });
}

}  // namespace sprocket
