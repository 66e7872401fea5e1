// The control API's sd-bus side. Method handlers are thin: they turn the call into a manager
// request, keep a reference to the message, and reply when the manager answers — so a Reload
// that takes seconds never blocks the master's loop.
#include "systemd/control_api.h"

#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <map>
#include <vector>

#include <boost/asio/local/stream_protocol.hpp>
#include <glog/logging.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "systemd/bus_connection.h"

namespace sprocket {

namespace asio = boost::asio;
using nlohmann::json;

json ParseTarget(std::string_view target) {
  const std::string t(target);
  int pid = 0;
  if (!t.empty() && absl::SimpleAtoi(t, &pid) && t.find_first_not_of("0123456789") == std::string::npos) {
    return {{"pid", pid}};
  }
  if (absl::StartsWith(t, "group:")) {
    return {{"group", t.substr(6)}};
  }
  const std::size_t dot = t.rfind('.');
  int index = 0;
  if (dot != std::string::npos && dot > 0 && absl::SimpleAtoi(t.substr(dot + 1), &index) &&
      t.find_first_not_of("0123456789", dot + 1) == std::string::npos) {
    return {{"name", t.substr(0, dot)}, {"index", index}};
  }
  return {{"name", t}};
}

namespace {

const char* ErrorName(int code) {
  switch (code) {
    case 400:
      return SD_BUS_ERROR_INVALID_ARGS;
    case 401:
    case 403:
      return SD_BUS_ERROR_ACCESS_DENIED;
    case 404:
      return "org.sprocket.Error.NotFound";
    case 429:
      return "org.sprocket.Error.QueueFull";
    case 503:
      return "org.sprocket.Error.Unavailable";
    default:
      return SD_BUS_ERROR_FAILED;
  }
}

// Replies to `call` with an array of `element` structs, one per row, each appended by
// `append(out, row)`.
int ReplyArray(sd_bus_message* call, const char* element, const json& rows,
               const std::function<int(sd_bus_message*, const json&)>& append) {
  sd_bus_message* out = nullptr;
  int r = sd_bus_message_new_method_return(call, &out);
  r = r < 0 ? r : sd_bus_message_open_container(out, 'a', element);
  for (const json& row : rows) {
    r = r < 0 ? r : append(out, row);
  }
  r = r < 0 ? r : sd_bus_message_close_container(out);
  r = r < 0 ? r : sd_bus_send(nullptr, out, nullptr);
  sd_bus_message_unref(out);
  return r;
}

class ControlApiImpl;

// A pending method call: the message is kept until the manager answers.
struct PendingCall {
  ControlApiImpl* api;
  sd_bus_message* message;  // referenced
};

class ControlApiImpl final : public ControlApi {
 public:
  ControlApiImpl(asio::io_context& io, ControlBackend& backend, std::string socket_path)
      : io_(io), backend_(backend), socket_path_(std::move(socket_path)), acceptor_(io) {}
  ~ControlApiImpl() override;

  absl::Status Listen();
  void ConnectSystemBus();

  // sprocket::ControlApi
  void EmitProcessEvent(const json& event) override;
  void EmitReloadFinished(bool ok, const std::string& reason) override;
  bool on_system_bus() const override { return system_bus_ != nullptr; }

  static const sd_bus_vtable kVtable[];
  static const sd_bus_vtable kHelloVtable[];

 private:
  static int OnList(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int OnRestart(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int OnReload(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int OnSend(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int OnStatus(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int OnStop(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int OnPing(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int OnHello(sd_bus_message* m, void* userdata, sd_bus_error* error);

  void Accept();
  void Serve(int fd);
  absl::Status AddObjects(sd_bus* bus, bool p2p);
  bool CallerIsRoot(sd_bus_message* m, sd_bus_error* error);
  // Forwards `request` to the manager and replies to `m` with `on_ok` or the manager's error.
  // `failure` names the D-Bus error for a non-2xx answer; by default it follows the code.
  void Forward(sd_bus_message* m, json request,
               std::function<int(sd_bus_message*, const json&)> on_ok,
               const char* failure = nullptr);
  void Flush(sd_bus* bus);

  asio::io_context& io_;
  ControlBackend& backend_;
  std::string socket_path_;
  asio::local::stream_protocol::acceptor acceptor_;
  std::map<sd_bus*, std::shared_ptr<BusConnection>> connections_;
  std::shared_ptr<BusConnection> system_bus_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::uint64_t next_peer_ = 1;
};

const sd_bus_vtable ControlApiImpl::kVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("ListProcesses", "", "a(sssiusttusst)", ControlApiImpl::OnList,
                  SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Restart", "s", "a(ssiu)", ControlApiImpl::OnRestart, 0),
    SD_BUS_METHOD("Reload", "", "", ControlApiImpl::OnReload, 0),
    SD_BUS_METHOD("Send", "say", "su", ControlApiImpl::OnSend, 0),
    SD_BUS_METHOD("Status", "", "s", ControlApiImpl::OnStatus, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Stop", "", "", ControlApiImpl::OnStop, 0),
    SD_BUS_METHOD("Ping", "", "", ControlApiImpl::OnPing, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL("ProcessStarted", "ssiu", 0),
    SD_BUS_SIGNAL("ProcessExited", "ssius", 0),
    SD_BUS_SIGNAL("ReloadFinished", "bs", 0),
    SD_BUS_VTABLE_END,
};

// busctl greets every bus with Hello; on our peer-to-peer socket we answer it ourselves.
const sd_bus_vtable ControlApiImpl::kHelloVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Hello", "", "s", ControlApiImpl::OnHello, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

ControlApiImpl::~ControlApiImpl() {
  *alive_ = false;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  ::unlink(socket_path_.c_str());
  for (auto& [bus, connection] : connections_) {
    connection->Close();
  }
  if (system_bus_) {
    system_bus_->Close();
  }
}

absl::Status ControlApiImpl::Listen() {
  // sockaddr_un holds 108 bytes with the terminating NUL.
  if (socket_path_.size() > 107) {
    return absl::InvalidArgumentError(
        absl::StrCat("control socket path ", socket_path_, " is ", socket_path_.size(),
                     " bytes, over the 107 a unix socket allows: choose a shorter --run_dir"));
  }
  ::unlink(socket_path_.c_str());
  boost::system::error_code ec;
  acceptor_.open(asio::local::stream_protocol(), ec);
  if (!ec) {
    // Bound with a umask that leaves only the owner in, so the socket is never briefly open.
    const mode_t old = ::umask(0077);
    acceptor_.bind(asio::local::stream_protocol::endpoint(socket_path_), ec);
    ::umask(old);
  }
  if (!ec && ::chmod(socket_path_.c_str(), 0600) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("chmod ", socket_path_));
  }
  if (!ec) {
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat("control socket ", socket_path_, ": ", ec.message()));
  }
  Accept();
  return absl::OkStatus();
}

void ControlApiImpl::Accept() {
  acceptor_.async_accept([this, alive = std::weak_ptr<bool>(alive_)](
                             boost::system::error_code ec, asio::local::stream_protocol::socket s) {
    if (alive.expired() || ec == asio::error::operation_aborted) {
      return;
    }
    if (!ec) {
      Serve(s.release());
    }
    Accept();
  });
}

void ControlApiImpl::Serve(int fd) {
  sd_bus* bus = nullptr;
  sd_id128_t id;
  int r = sd_bus_new(&bus);
  if (r >= 0) {
    sd_id128_randomize(&id);
    r = sd_bus_set_fd(bus, fd, fd);
  }
  if (r >= 0) {
    r = sd_bus_set_server(bus, 1, id);
  }
  if (r >= 0) {
    r = sd_bus_start(bus);
  }
  if (r < 0 || !AddObjects(bus, /*p2p=*/true).ok()) {
    LOG(WARNING) << "control socket: cannot serve a connection: " << strerror(-r) << ", ignoring";
    if (bus != nullptr) {
      sd_bus_close_unref(bus);
    } else {
      ::close(fd);
    }
    return;
  }
  connections_[bus] = BusConnection::Attach(io_, bus, [this, bus, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) {
      connections_.erase(bus);
    }
  });
}

absl::Status ControlApiImpl::AddObjects(sd_bus* bus, bool p2p) {
  // Floating slots: they live as long as the bus.
  int r = sd_bus_add_object_vtable(bus, nullptr, kObjectPath, kInterface, kVtable, this);
  if (r >= 0 && p2p) {
    r = sd_bus_add_object_vtable(bus, nullptr, "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                 kHelloVtable, this);
  }
  return r < 0 ? absl::ErrnoToStatus(-r, "sd_bus_add_object_vtable") : absl::OkStatus();
}

void ControlApiImpl::ConnectSystemBus() {
  sd_bus* bus = nullptr;
  int r = sd_bus_open_system(&bus);
  if (r >= 0) {
    r = AddObjects(bus, /*p2p=*/false).ok() ? 0 : -EINVAL;
  }
  if (r >= 0) {
    r = sd_bus_request_name(bus, kBusName, 0);
  }
  if (r < 0) {
    LOG(INFO) << "control API: not on the system bus (" << strerror(-r)
              << "); the private socket " << socket_path_ << " serves it";
    if (bus != nullptr) {
      sd_bus_flush_close_unref(bus);
    }
    return;
  }
  LOG(INFO) << "control API on the system bus as " << kBusName;
  system_bus_ = BusConnection::Attach(io_, bus, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) {
      LOG(WARNING) << "control API: the system bus connection was lost";
      system_bus_.reset();
    }
  });
}

void ControlApiImpl::Flush(sd_bus* bus) {
  if (system_bus_ && system_bus_->bus() == bus) {
    system_bus_->Kick();
  } else if (auto it = connections_.find(bus); it != connections_.end()) {
    it->second->Kick();
  }
}

bool ControlApiImpl::CallerIsRoot(sd_bus_message* m, sd_bus_error* error) {
  // On the private socket the check is the socket itself: mode 0600, owned by the server's
  // user, so only that user (root under systemd) can connect. The system bus lets anyone in.
  if (!system_bus_ || sd_bus_message_get_bus(m) != system_bus_->bus()) {
    return true;
  }
  sd_bus_creds* creds = nullptr;
  uid_t euid = 1;
  int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds);
  if (r >= 0) {
    r = sd_bus_creds_get_euid(creds, &euid);
  }
  sd_bus_creds_unref(creds);
  if (r < 0 || euid != 0) {
    sd_bus_error_set_const(error, SD_BUS_ERROR_ACCESS_DENIED,
                           "only root may restart, reload, send to or stop sprocket");
    return false;
  }
  return true;
}

void ControlApiImpl::Forward(sd_bus_message* m, json request,
                             std::function<int(sd_bus_message*, const json&)> on_ok,
                             const char* failure) {
  sd_bus_message_ref(m);
  backend_.Call(std::move(request), [this, m, on_ok = std::move(on_ok), failure,
                                     alive = std::weak_ptr<bool>(alive_)](json reply) {
    const int code = reply.value("code", 500);
    if (code >= 200 && code < 300) {
      on_ok(m, reply);
    } else {
      sd_bus_reply_method_errorf(m, failure != nullptr ? failure : ErrorName(code), "%s",
                                 reply.value("msg", std::string("failed")).c_str());
    }
    if (!alive.expired()) {
      Flush(sd_bus_message_get_bus(m));
    }
    sd_bus_message_unref(m);
  });
}

int ControlApiImpl::OnList(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* api = static_cast<ControlApiImpl*>(userdata);
  api->Forward(m, {{"op", "list"}}, [](sd_bus_message* call, const json& reply) {
    return ReplyArray(call, "(sssiusttusst)", reply["result"], [](sd_bus_message* out,
                                                                  const json& s) {
      return sd_bus_message_append(
          out, "(sssiusttusst)", s["kind"].get<std::string>().c_str(),
          s["name"].get<std::string>().c_str(), s["group"].get<std::string>().c_str(),
          s["index"].get<int>(), s["pid"].get<uint32_t>(), s["state"].get<std::string>().c_str(),
          s["start_time"].get<uint64_t>(), s["uptime_ms"].get<uint64_t>(),
          s["restarts"].get<uint32_t>(), s["last_exit"].get<std::string>().c_str(),
          s["reason"].get<std::string>().c_str(), s["rss_bytes"].get<uint64_t>());
    });
  });
  return 1;
}

int ControlApiImpl::OnRestart(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  auto* api = static_cast<ControlApiImpl*>(userdata);
  const char* target = nullptr;
  if (int r = sd_bus_message_read(m, "s", &target); r < 0) {
    return r;
  }
  if (!api->CallerIsRoot(m, error)) {
    return -EACCES;
  }
  api->Forward(m, {{"op", "restart"}, {"target", ParseTarget(target)}},
               [](sd_bus_message* call, const json& reply) {
                 return ReplyArray(call, "(ssiu)", reply["result"]["restarted"],
                                   [](sd_bus_message* out, const json& s) {
                                     return sd_bus_message_append(
                                         out, "(ssiu)", s["kind"].get<std::string>().c_str(),
                                         s["name"].get<std::string>().c_str(),
                                         s["index"].get<int>(), s["pid"].get<uint32_t>());
                                   });
               });
  return 1;
}

int ControlApiImpl::OnReload(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  auto* api = static_cast<ControlApiImpl*>(userdata);
  if (!api->CallerIsRoot(m, error)) {
    return -EACCES;
  }
  api->Forward(
      m, {{"op", "reload"}},
      [](sd_bus_message* call, const json&) { return sd_bus_reply_method_return(call, ""); },
      "org.sprocket.Error.ReloadFailed");
  return 1;
}

int ControlApiImpl::OnSend(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  auto* api = static_cast<ControlApiImpl*>(userdata);
  const char* target = nullptr;
  const void* data = nullptr;
  size_t size = 0;
  int r = sd_bus_message_read(m, "s", &target);
  r = r < 0 ? r : sd_bus_message_read_array(m, 'y', &data, &size);
  if (r < 0) {
    return r;
  }
  if (!api->CallerIsRoot(m, error)) {
    return -EACCES;
  }
  json t = ParseTarget(target);
  if (!t.contains("name")) {
    sd_bus_error_set_const(error, SD_BUS_ERROR_INVALID_ARGS, "send needs NAME or NAME.INDEX");
    return -EINVAL;
  }
  if (!t.contains("index")) {
    t["index"] = 0;
  }
  api->Forward(m,
               {{"op", "send"},
                {"target", t},
                {"message", std::string(static_cast<const char*>(data), size)}},
               [](sd_bus_message* call, const json& reply) {
                 const bool queued = reply["result"].value("queued", false);
                 return sd_bus_reply_method_return(call, "su", queued ? "queued" : "delivered",
                                                   reply["result"].value("pid", 0u));
               });
  return 1;
}

int ControlApiImpl::OnStatus(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* api = static_cast<ControlApiImpl*>(userdata);
  return sd_bus_reply_method_return(m, "s", api->backend_.StatusLine().c_str());
}

int ControlApiImpl::OnStop(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  auto* api = static_cast<ControlApiImpl*>(userdata);
  if (!api->CallerIsRoot(m, error)) {
    return -EACCES;
  }
  const int r = sd_bus_reply_method_return(m, "");
  api->Flush(sd_bus_message_get_bus(m));
  asio::post(api->io_, [api, alive = std::weak_ptr<bool>(api->alive_)] {
    if (!alive.expired()) {
      api->backend_.RequestStop();
    }
  });
  return r;
}

int ControlApiImpl::OnPing(sd_bus_message* m, void*, sd_bus_error*) {
  return sd_bus_reply_method_return(m, "");
}

int ControlApiImpl::OnHello(sd_bus_message* m, void*, sd_bus_error*) {
  return sd_bus_reply_method_return(m, "s", ":1.1");
}

void ControlApiImpl::EmitProcessEvent(const json& event) {
  const std::string name = event.value("event", "");
  const std::string kind = event.value("kind", "");
  const std::string process = event.value("name", "");
  const int index = event.value("index", 0);
  const uint32_t pid = event.value("pid", 0u);
  auto emit = [&](const std::shared_ptr<BusConnection>& c) {
    if (name == "started") {
      sd_bus_emit_signal(c->bus(), kObjectPath, kInterface, "ProcessStarted", "ssiu",
                         kind.c_str(), process.c_str(), index, pid);
    } else if (name == "exited") {
      sd_bus_emit_signal(c->bus(), kObjectPath, kInterface, "ProcessExited", "ssius",
                         kind.c_str(), process.c_str(), index, pid,
                         event.value("last_exit", std::string()).c_str());
    }
    c->Kick();
  };
  for (auto& [bus, c] : connections_) {
    emit(c);
  }
  if (system_bus_) {
    emit(system_bus_);
  }
}

void ControlApiImpl::EmitReloadFinished(bool ok, const std::string& reason) {
  auto emit = [&](const std::shared_ptr<BusConnection>& c) {
    sd_bus_emit_signal(c->bus(), kObjectPath, kInterface, "ReloadFinished", "bs", ok,
                       reason.c_str());
    c->Kick();
  };
  for (auto& [bus, c] : connections_) {
    emit(c);
  }
  if (system_bus_) {
    emit(system_bus_);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ControlApi>> ControlApi::Start(asio::io_context& io,
                                                             ControlBackend& backend,
                                                             const std::string& socket_path,
                                                             bool system_bus) {
  auto api = std::make_unique<ControlApiImpl>(io, backend, socket_path);
  if (absl::Status s = api->Listen(); !s.ok()) {
    return s;
  }
  if (system_bus) {
    api->ConnectSystemBus();
  }
  return api;
}

}  // namespace sprocket
