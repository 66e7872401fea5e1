// Process's helpers live in the host binary (exported with -rdynamic), so units only use them:
// no unit carries its own copy of the runtime.
#include "process/process.h"

#include <cstdlib>

#include <glog/logging.h>

#include "process/exit_codes.h"

namespace sprocket {

Process::~Process() = default;

void Process::OnPipeReadable(ProcessPipe& pipe) {
  while (std::optional<std::string> message = pipe.Read()) {
    LOG(WARNING) << ProcessName() << " " << Index() << ": message of " << message->size()
                 << " bytes dropped: the process does not override OnPipeReadable";
  }
}

void Process::OnShutdown() {}

void Process::OnException(const std::exception& error) {
  LOG(ERROR) << ProcessName() << " " << Index() << ": uncaught exception: " << error.what()
             << "; exiting so the manager restarts the process";
  google::FlushLogFiles(google::GLOG_INFO);
  std::_Exit(kExitException);
}

const std::string& Process::ProcessName() const { return context_->Name(); }

int Process::Index() const { return context_->Index(); }

const nlohmann::json& Process::Arg() const { return context_->Arg(); }

TimerId Process::Loop(std::chrono::milliseconds period, std::function<void()> fn) {
  return context_->AddTimer(period, /*repeat=*/true, std::move(fn));
}

TimerId Process::After(std::chrono::milliseconds delay, std::function<void()> fn) {
  return context_->AddTimer(delay, /*repeat=*/false, std::move(fn));
}

bool Process::Clear(TimerId id) { return context_->ClearTimer(id); }

boost::asio::io_context& Process::EventLoop() { return context_->EventLoop(); }

}  // namespace sprocket
