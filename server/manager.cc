#include "server/manager.h"

#include <unistd.h>

#include <cstdint>
#include <map>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "controllers/worker_runtime.h"
#include "process/fork_setup.h"
#include "process/frame_channel.h"
#include "process/os.h"
#include "process/process_title.h"
#include "process/registry.h"
#include "process/signal_reader.h"
#include "process/supervisor.h"
#include "server/listen.h"

namespace sprocket {
namespace {

using nlohmann::json;

// Requests the manager makes of the master (a worker's "send"), answered by id.
class MasterCalls {
 public:
  explicit MasterCalls(std::shared_ptr<FrameChannel> master) : master_(std::move(master)) {}
  void Call(json request, std::function<void(json)> reply) {
    const std::uint64_t id = next_id_++;
    request["id"] = id;
    pending_.emplace(id, std::move(reply));
    master_->Send(FrameType::kRequest, request.dump());
  }
  void OnResponse(const json& reply) {
    auto it = pending_.find(reply.is_object() ? reply.value("id", std::uint64_t{0}) : 0);
    if (it != pending_.end()) {
      auto done = std::move(it->second);
      pending_.erase(it);
      done(reply);
    }
  }

 private:
  std::shared_ptr<FrameChannel> master_;
  std::map<std::uint64_t, std::function<void(json)>> pending_;
  std::uint64_t next_id_ = 1;
};

// Control requests from the master: each answered with the request's id.
void ServeMaster(const std::shared_ptr<FrameChannel>& master, Supervisor& supervisor,
                 MasterCalls& calls) {
  std::weak_ptr<FrameChannel> weak = master;
  master->Start(
      [weak, &supervisor, &calls](Frame frame) {
        if (frame.type == FrameType::kResponse) {
          calls.OnResponse(json::parse(frame.payload, nullptr, /*allow_exceptions=*/false));
          return;
        }
        if (frame.type != FrameType::kRequest) {
          return;
        }
        json request = json::parse(frame.payload, nullptr, /*allow_exceptions=*/false);
        const json id = request.is_object() ? request.value("id", json()) : json();
        supervisor.HandleRequest(request, [weak, id](json reply) {
          reply["id"] = id;
          if (auto channel = weak.lock()) {
            channel->Send(FrameType::kResponse, reply.dump());
          }
        });
      },
      [](const absl::Status&) {});  // the master's death kills us (PR_SET_PDEATHSIG)
}

int ManagerMain(const ServerConfig& config, const std::string& run_dir, UniqueFd channel,
                const std::vector<int>& listen_fds) {
  boost::asio::io_context io;
  Registry registry(run_dir);
  std::vector<std::string> listen;
  for (int fd : listen_fds) {
    listen.push_back(SocketAddress(fd));
  }
  registry.set_listen(std::move(listen));
  const std::string pid_file = absl::StrCat(run_dir, "/", kManagerPidFile);
  if (absl::Status s = WriteFileAtomically(pid_file, absl::StrCat(::getpid(), "\n")); !s.ok()) {
    LOG(WARNING) << "manager: " << s.message() << ", ignoring";
  }
  std::shared_ptr<FrameChannel> master = FrameChannel::Create(io, std::move(channel));
  MasterCalls calls(master);
  SupervisorOptions options{
      config.processes, config.http, WorkerCount(config),
      [&](pid_t manager, int index, UniqueFd worker_channel) {
        RunWorker(manager, index, std::move(worker_channel), config.http, listen_fds);
      },
      [&](json event) { master->Send(FrameType::kEvent, event.dump()); },
      [&](const std::string& name, int index, pid_t pid, UniqueFd mailbox) {
        const json event = {{"event", "mailbox"}, {"name", name}, {"index", index}, {"pid", pid}};
        master->SendWithFd(FrameType::kEvent, event.dump(), std::move(mailbox));
      },
      [&](json request, std::function<void(json)> reply) {
        calls.Call(std::move(request), std::move(reply));
      }};
  std::unique_ptr<Supervisor> supervisor = NewSupervisor(io, RealOs(), options, registry);
  absl::StatusOr<std::unique_ptr<SignalReader>> signals =
      SignalReader::Open(io, LoopSignals(), [&](int sig) {
        if (sig != SIGTERM && sig != SIGINT) {
          return;
        }
        LOG(INFO) << "manager: stopping every process";
        supervisor->Stop([&] {
          registry.RemoveSlotFiles();
          ::unlink(pid_file.c_str());
          io.stop();
        });
      });
  if (!signals.ok()) {
    LOG(ERROR) << "manager: " << signals.status();
    return 1;
  }
  ServeMaster(master, *supervisor, calls);
  supervisor->Start([&] { master->Send(FrameType::kReady, ""); });
  io.run();
  return 0;
}

}  // namespace

int WorkerCount(const ServerConfig& config) {
  return config.http.units.empty() ? 0 : config.http.workers;
}

void RunManager(pid_t master, const ServerConfig& config, const std::string& run_dir,
                UniqueFd channel, const std::vector<int>& listen_fds) {
  std::vector<int> keep(listen_fds);
  keep.push_back(channel.get());
  PrepareForkedChild(master, keep);
  // Our own process group: a Ctrl-C on the terminal reaches only the master, which then stops
  // us and the children in order instead of everyone exiting at once.
  ::setpgid(0, 0);
  SetProcessTitle("sprocket: manager");
  const int code = ManagerMain(config, run_dir, std::move(channel), listen_fds);
  google::FlushLogFiles(google::GLOG_INFO);
  ::_exit(code);
}

}  // namespace sprocket
