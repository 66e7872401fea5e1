// The sprocket side of the respawn benchmark (tools/bench/bench_respawn.cc): a process class
// whose Run() reports "PID MONOTONIC_NS\n" to the FIFO named by arg["fifo"] the moment it begins.
// The driver sends SIGTERM to the reported pid; the default OnShutdown lets the process exit
// cleanly, the manager respawns it, and the next line marks the new instance's Run().
//
// Runs in a sprocket custom-process child only.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include "process/unit.h"

namespace {

class BenchRespawn : public sprocket::Process {
 public:
  void Run(const nlohmann::json& arg) override {
    // First thing: this is the instant the benchmark measures to.
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    char line[64];
    const int len = std::snprintf(line, sizeof(line), "%d %lld\n", static_cast<int>(::getpid()),
                                  static_cast<long long>(now.tv_sec) * 1000000000LL + now.tv_nsec);
    const std::string fifo = arg.at("fifo").get<std::string>();
    // The driver always holds the FIFO open for reading, so this open does not block. One write
    // shorter than PIPE_BUF is atomic.
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      throw std::runtime_error("cannot open the benchmark FIFO " + fifo);
    }
    const ssize_t written = ::write(fd, line, static_cast<size_t>(len));
    ::close(fd);
    if (written != len) {
      throw std::runtime_error("short write to the benchmark FIFO " + fifo);
    }
  }
};

}  // namespace

SPROCKET_PROCESS(BenchRespawn);
