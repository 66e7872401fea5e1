#include "controllers/worker_runtime.h"

#include <poll.h>
#include <unistd.h>

#include <memory>
#include <optional>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "controllers/controller.h"
#include "controllers/http_server.h"
#include "controllers/router.h"
#include "process/channel.h"
#include "process/exit_codes.h"
#include "process/fork_setup.h"
#include "process/process_title.h"
#include "process/signal_reader.h"
#include "process/unit_loader.h"

namespace sprocket {

namespace asio = boost::asio;
using nlohmann::json;

class WorkerRuntime final : public internal::ControllerContext, public ServerControl {
 public:
  WorkerRuntime(int index, UniqueFd channel, const HttpConfig& http)
      : index_(index), channel_(std::move(channel)), http_(http), router_(http.admin_token) {}
  ~WorkerRuntime() { server_.reset(); }

  int Main(const std::vector<int>& listen_fds);

  // internal::ControllerContext
  ServerControl& Control() override { return *this; }
  int WorkerIndex() const override { return index_; }

  // sprocket::ServerControl
  ControlResult ListProcesses() override { return Call({{"op", "list"}}); }
  ControlResult Restart(const json& target) override {
    return Call({{"op", "restart"}, {"target", target}});
  }
  ControlResult Send(const std::string& name, int index, std::string_view message) override {
    return Call({{"op", "send"},
                 {"target", {{"name", name}, {"index", index}}},
                 {"message", std::string(message)}});
  }

 private:
  absl::Status LoadControllers();
  absl::Status LoadUnit(const std::string& path);
  ControlResult Call(json request);
  std::optional<Frame> ReadFrame(int timeout_ms);
  void Drain();

  const int index_;
  UniqueFd channel_;
  const HttpConfig& http_;
  asio::io_context io_;
  // Destroyed in reverse order: the server and the routes (whose handlers are unit code) go
  // before the controllers, whose destruction unloads the units.
  std::vector<UnitObject<Controller>> controllers_;
  RouterImpl router_;
  std::optional<HttpServer> server_;
  std::unique_ptr<SignalReader> signals_;
  FrameDecoder decoder_;
  std::uint64_t next_id_ = 1;
  bool draining_ = false;
};

int WorkerRuntime::Main(const std::vector<int>& listen_fds) {
  absl::StatusOr<std::unique_ptr<SignalReader>> signals =
      SignalReader::Open(io_, LoopSignals(), [this](int sig) {
        if (sig == SIGTERM || sig == SIGINT) {
          Drain();
        }
      });
  if (!signals.ok()) {
    LOG(ERROR) << "worker " << index_ << ": " << signals.status();
    return kExitChildSetup;
  }
  signals_ = *std::move(signals);
  if (absl::Status s = LoadControllers(); !s.ok()) {
    LOG(ERROR) << "worker " << index_ << ": " << s.message();
    (void)WriteAll(channel_.get(), EncodeFrame(FrameType::kLoadError, std::string(s.message())));
    return UnitLoadExitCode(s);
  }
  server_.emplace(io_, http_, [this](const HttpRequest& req, HttpResponse& res) {
    router_.Dispatch(req, res);
  });
  if (absl::Status s = server_->Listen(listen_fds); !s.ok()) {
    LOG(ERROR) << "worker " << index_ << ": " << s.message();
    return kExitChildSetup;
  }
  (void)WriteAll(channel_.get(), EncodeFrame(FrameType::kReady, ""));
  io_.run();
  return kExitClean;
}

absl::Status WorkerRuntime::LoadControllers() {
  for (const std::string& unit : http_.units) {
    if (absl::Status s = LoadUnit(unit); !s.ok()) {
      return s;
    }
  }
  if (!router_.status().ok()) {
    return UnitLoadError(kExitRoutes, std::string(router_.status().message()));
  }
  return absl::OkStatus();
}

absl::Status WorkerRuntime::LoadUnit(const std::string& path) {
  absl::StatusOr<std::shared_ptr<UnitHandle>> unit = UnitHandle::Open(path);
  if (!unit.ok()) {
    return unit.status();
  }
  std::vector<const sprocket_unit_class*> classes = (*unit)->ClassesOfKind(SPROCKET_UNIT_CONTROLLER);
  if (classes.empty()) {
    return UnitLoadError(kExitRoutes, absl::StrCat("unit ", path, " registers no controller"));
  }
  for (const sprocket_unit_class* cls : classes) {
    absl::StatusOr<void*> instance = CreateUnitInstance(**unit, *cls);
    if (!instance.ok()) {
      return instance.status();
    }
    controllers_.emplace_back(*unit, cls, *instance);
    controllers_.back()->context_ = this;
    controllers_.back()->Routes(router_);
  }
  return absl::OkStatus();
}

// Blocking on purpose: control calls are rare admin requests, the manager answers at once, and
// a bounded wait keeps a wedged manager from hanging the worker forever.
ControlResult WorkerRuntime::Call(json request) {
  const std::uint64_t id = next_id_++;
  request["id"] = id;
  if (absl::Status s = WriteAll(channel_.get(), EncodeFrame(FrameType::kRequest, request.dump()));
      !s.ok()) {
    return {503, nullptr, absl::StrCat("manager unreachable: ", s.message())};
  }
  while (std::optional<Frame> frame = ReadFrame(5000)) {
    json reply = json::parse(frame->payload, nullptr, /*allow_exceptions=*/false);
    if (frame->type != FrameType::kResponse || !reply.is_object() || reply.value("id", 0ull) != id) {
      continue;
    }
    return {reply.value("code", 500), reply.value("result", json()), reply.value("msg", "")};
  }
  return {503, nullptr, "the manager did not answer in time"};
}

std::optional<Frame> WorkerRuntime::ReadFrame(int timeout_ms) {
  for (;;) {
    if (std::optional<Frame> frame = decoder_.Next()) {
      return frame;
    }
    pollfd p{channel_.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) {
      return std::nullopt;
    }
    char buf[16 * 1024];
    const ssize_t n = ::read(channel_.get(), buf, sizeof(buf));
    if (n <= 0) {
      return std::nullopt;
    }
    decoder_.Append(std::string_view(buf, static_cast<std::size_t>(n)));
  }
}

void WorkerRuntime::Drain() {
  if (draining_) {
    return;
  }
  draining_ = true;
  if (!server_) {
    io_.stop();  // stopped while still loading: nothing to drain
    return;
  }
  LOG(INFO) << "worker " << index_ << ": draining";
  // Tells the manager this exit is deliberate (a restart or a reload), not a crash.
  (void)WriteAll(channel_.get(), EncodeFrame(FrameType::kStopping, ""));
  // The server closes idle connections at max_wait_time; this is the backstop if it cannot.
  ArmExitDeadline(http_.max_wait_time + std::chrono::seconds(1));
  signals_->Close();
  server_->Drain([this] { io_.stop(); });
}

void RunWorker(pid_t manager, int index, UniqueFd channel, const HttpConfig& http,
               const std::vector<int>& listen_fds) {
  std::vector<int> keep(listen_fds);
  keep.push_back(channel.get());
  PrepareForkedChild(manager, keep);
  SetProcessTitle(absl::StrCat("sprocket: worker ", index));
  int code;
  {
    WorkerRuntime runtime(index, std::move(channel), http);
    code = runtime.Main(listen_fds);
  }
  google::FlushLogFiles(google::GLOG_INFO);
  ::_exit(code);
}

}  // namespace sprocket
