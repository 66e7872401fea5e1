// The sprocket side of the message benchmark (tools/bench/message/bench_message.cc).
//
// BenchSink: OnPipeReadable takes CLOCK_MONOTONIC once as it begins (the instant the message
// reached user code), then reads every waiting message with pipe.Read() and keeps
// (arrival_ns, message) in memory. The driver's messages are "m SEQ SENT_NS" (measured) or
// "w SEQ SENT_NS" (warm-up); the message "dump" writes everything kept so far to arg["out"]
// (through a temp file and a rename, so the driver never reads half a file):
//
//   wakeups W messages M
//   ARRIVAL_NS m SEQ SENT_NS          one line per message, in arrival order
//   end M
//
// Nothing is parsed or written per message, so the measured path costs the process one clock
// read and one vector append.
//
// BenchIdle: does nothing; the `ps` benchmark runs 1,000 of them.
//
// Runs in a sprocket custom-process child only.
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "process/unit.h"

namespace {

std::int64_t MonotonicNs() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1000000000LL + now.tv_nsec;
}

class BenchSink : public sprocket::Process {
 public:
  void Run(const nlohmann::json& arg) override {
    out_ = arg.at("out").get<std::string>();
    records_.reserve(arg.value("reserve", 100000));
  }

  void OnPipeReadable(sprocket::ProcessPipe& pipe) override {
    const std::int64_t now = MonotonicNs();  // first thing: what the benchmark measures to
    ++wakeups_;
    while (std::optional<std::string> message = pipe.Read()) {
      if (*message == "dump") {
        Dump();
      } else {
        records_.emplace_back(now, std::move(*message));
      }
    }
  }

 private:
  void Dump() {
    const std::string tmp = out_ + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) {
      throw std::runtime_error("cannot write " + tmp);
    }
    std::fprintf(f, "wakeups %llu messages %zu\n", static_cast<unsigned long long>(wakeups_),
                 records_.size());
    for (const auto& [arrival, message] : records_) {
      std::fprintf(f, "%lld %s\n", static_cast<long long>(arrival), message.c_str());
    }
    std::fprintf(f, "end %zu\n", records_.size());
    const bool ok = std::fflush(f) == 0;
    if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), out_.c_str()) != 0) {
      throw std::runtime_error("cannot write " + out_);
    }
    records_.clear();
    wakeups_ = 0;
  }

  std::string out_;
  std::vector<std::pair<std::int64_t, std::string>> records_;
  std::uint64_t wakeups_ = 0;
};

class BenchIdle : public sprocket::Process {
 public:
  void Run(const nlohmann::json&) override {}
};

}  // namespace

SPROCKET_PROCESS(BenchSink);
SPROCKET_PROCESS(BenchIdle);
