#include "systemd/control_client.h"

#include <systemd/sd-bus.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "systemd/control_api.h"

namespace sprocket {
namespace {

// An sd_bus_error owned for one call.
struct BusError {
  sd_bus_error e = SD_BUS_ERROR_NULL;
  ~BusError() { sd_bus_error_free(&e); }
};

// A message reference owned for one call.
struct Message {
  sd_bus_message* m = nullptr;
  ~Message() { sd_bus_message_unref(m); }
};

absl::Status FromBusError(const sd_bus_error& e, int r, const char* call) {
  const std::string msg = e.message != nullptr ? e.message : strerror(-r);
  const std::string name = e.name != nullptr ? e.name : "";
  if (name == SD_BUS_ERROR_ACCESS_DENIED) {
    return absl::PermissionDeniedError(msg);
  }
  if (name == "org.sprocket.Error.NotFound" || name == SD_BUS_ERROR_UNKNOWN_METHOD) {
    return absl::NotFoundError(msg);
  }
  if (name == "org.sprocket.Error.QueueFull") {
    return absl::ResourceExhaustedError(msg);
  }
  if (name == SD_BUS_ERROR_INVALID_ARGS) {
    return absl::InvalidArgumentError(msg);
  }
  if (name == "org.sprocket.Error.ReloadFailed") {
    return absl::FailedPreconditionError(msg);
  }
  if (name == "org.sprocket.Error.Unavailable" || name == SD_BUS_ERROR_NO_REPLY ||
      name == SD_BUS_ERROR_SERVICE_UNKNOWN || name.empty()) {
    return absl::UnavailableError(name.empty() ? absl::StrCat(call, ": ", msg) : msg);
  }
  return absl::InternalError(msg);
}

constexpr std::uint64_t kReloadTimeoutUsec = 300ull * 1000 * 1000;

int NoArgs(sd_bus_message*) { return 0; }

}  // namespace

absl::StatusOr<std::unique_ptr<ControlClient>> ControlClient::ConnectPrivate(
    const std::string& socket) {
  sd_bus* bus = nullptr;
  int r = sd_bus_new(&bus);
  const std::string address = absl::StrCat("unix:path=", socket);
  r = r < 0 ? r : sd_bus_set_address(bus, address.c_str());
  // A peer-to-peer link: no Hello, no destination names.
  r = r < 0 ? r : sd_bus_set_bus_client(bus, 0);
  r = r < 0 ? r : sd_bus_start(bus);
  if (r == -ENOENT || r == -ECONNREFUSED) {
    sd_bus_flush_close_unref(bus);
    return absl::UnavailableError(
        absl::StrCat("sprocket is not running (no control socket at ", socket, ")"));
  }
  if (r == -EACCES || r == -EPERM) {
    sd_bus_flush_close_unref(bus);
    return absl::PermissionDeniedError(
        absl::StrCat("permission denied: ", socket, " is open to its owner (root) only"));
  }
  if (r < 0) {
    sd_bus_flush_close_unref(bus);
    return absl::UnavailableError(absl::StrCat("cannot connect to ", socket, ": ", strerror(-r)));
  }
  return std::unique_ptr<ControlClient>(new ControlClient(bus, nullptr));
}

absl::StatusOr<std::unique_ptr<ControlClient>> ControlClient::ConnectSystemBus() {
  sd_bus* bus = nullptr;
  if (int r = sd_bus_open_system(&bus); r < 0) {
    return absl::UnavailableError(absl::StrCat("no system bus: ", strerror(-r)));
  }
  return std::unique_ptr<ControlClient>(new ControlClient(bus, kBusName));
}

ControlClient::~ControlClient() { sd_bus_flush_close_unref(bus_); }

// Calls `member`; `append` adds the arguments. The reply lands in `reply`.
absl::Status ControlClient::Call(const char* member, std::uint64_t timeout_usec,
                                 sd_bus_message** reply,
                                 const std::function<int(sd_bus_message*)>& append) {
  BusError error;
  sd_bus_message* call = nullptr;
  int r = sd_bus_message_new_method_call(bus_, &call, destination_, kObjectPath, kInterface,
                                         member);
  r = r < 0 ? r : append(call);
  r = r < 0 ? r : sd_bus_call(bus_, call, timeout_usec, &error.e, reply);
  sd_bus_message_unref(call);
  return r < 0 ? FromBusError(error.e, r, member) : absl::OkStatus();
}

absl::StatusOr<std::vector<ProcessRow>> ControlClient::ListProcesses() {
  Message reply;
  if (absl::Status s = Call("ListProcesses", 0, &reply.m, NoArgs); !s.ok()) {
    return s;
  }
  std::vector<ProcessRow> rows;
  int r = sd_bus_message_enter_container(reply.m, 'a', "(sssiusttusst)");
  while (r > 0) {
    const char *kind, *name, *group, *state, *last_exit, *reason;
    ProcessRow row;
    r = sd_bus_message_read(reply.m, "(sssiusttusst)", &kind, &name, &group, &row.index, &row.pid,
                            &state, &row.start_time, &row.uptime_ms, &row.restarts, &last_exit,
                            &reason, &row.rss_bytes);
    if (r > 0) {
      row.kind = kind, row.name = name, row.group = group, row.state = state;
      row.last_exit = last_exit, row.reason = reason;
      rows.push_back(std::move(row));
    }
  }
  if (r < 0) {
    return absl::DataLossError(absl::StrCat("malformed ListProcesses reply: ", strerror(-r)));
  }
  return rows;
}

absl::StatusOr<std::vector<RestartedRow>> ControlClient::Restart(const std::string& target) {
  Message reply;
  if (absl::Status s = Call("Restart", 0, &reply.m,
                            [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", target.c_str()); });
      !s.ok()) {
    return s;
  }
  std::vector<RestartedRow> rows;
  int r = sd_bus_message_enter_container(reply.m, 'a', "(ssiu)");
  while (r > 0) {
    const char *kind, *name;
    RestartedRow row;
    r = sd_bus_message_read(reply.m, "(ssiu)", &kind, &name, &row.index, &row.pid);
    if (r > 0) {
      row.kind = kind, row.name = name;
      rows.push_back(std::move(row));
    }
  }
  if (r < 0) {
    return absl::DataLossError(absl::StrCat("malformed Restart reply: ", strerror(-r)));
  }
  return rows;
}

absl::Status ControlClient::Reload() {
  Message reply;
  return Call("Reload", kReloadTimeoutUsec, &reply.m, NoArgs);
}

absl::StatusOr<std::pair<std::string, std::uint32_t>> ControlClient::Send(
    const std::string& target, const std::string& message) {
  Message reply;
  absl::Status s = Call("Send", 0, &reply.m, [&](sd_bus_message* m) {
    const int r = sd_bus_message_append(m, "s", target.c_str());
    return r < 0 ? r : sd_bus_message_append_array(m, 'y', message.data(), message.size());
  });
  if (!s.ok()) {
    return s;
  }
  const char* status = nullptr;
  std::uint32_t pid = 0;
  if (int r = sd_bus_message_read(reply.m, "su", &status, &pid); r < 0) {
    return absl::DataLossError(absl::StrCat("malformed Send reply: ", strerror(-r)));
  }
  return std::make_pair(std::string(status), pid);
}

absl::StatusOr<std::string> ControlClient::Status() {
  Message reply;
  if (absl::Status s = Call("Status", 0, &reply.m, NoArgs); !s.ok()) {
    return s;
  }
  const char* line = nullptr;
  if (int r = sd_bus_message_read(reply.m, "s", &line); r < 0) {
    return absl::DataLossError(absl::StrCat("malformed Status reply: ", strerror(-r)));
  }
  return std::string(line);
}

absl::Status ControlClient::Stop() {
  Message reply;
  return Call("Stop", 0, &reply.m, NoArgs);
}

namespace {

struct Watch {
  const std::function<bool(const std::string&, const std::string&)>* on_signal;
  bool done = false;
};

std::string SignalArgs(sd_bus_message* m) {
  const std::string member = sd_bus_message_get_member(m);
  const char *kind = "", *name = "", *last_exit = "";
  int index = 0, ok = 0;
  std::uint32_t pid = 0;
  if (member == "ProcessStarted" &&
      sd_bus_message_read(m, "ssiu", &kind, &name, &index, &pid) >= 0) {
    return absl::StrCat(kind, " ", name, " ", index, " ", pid);
  }
  if (member == "ProcessExited" &&
      sd_bus_message_read(m, "ssius", &kind, &name, &index, &pid, &last_exit) >= 0) {
    return absl::StrCat(kind, " ", name, " ", index, " ", pid, " ", last_exit);
  }
  if (member == "ReloadFinished" && sd_bus_message_read(m, "bs", &ok, &last_exit) >= 0) {
    return absl::StrCat(ok ? "ok" : "failed", " ", last_exit);
  }
  return "";
}

int OnSignal(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* watch = static_cast<Watch*>(userdata);
  if (!watch->done) {
    watch->done = (*watch->on_signal)(sd_bus_message_get_member(m), SignalArgs(m));
  }
  return 0;
}

}  // namespace

absl::Status ControlClient::WatchSignals(
    std::chrono::milliseconds timeout,
    const std::function<bool(const std::string&, const std::string&)>& on_signal) {
  Watch watch{&on_signal};
  sd_bus_slot* slot = nullptr;
  if (int r = sd_bus_match_signal(bus_, &slot, nullptr, kObjectPath, kInterface, nullptr,
                                  OnSignal, &watch);
      r < 0) {
    return absl::ErrnoToStatus(-r, "sd_bus_match_signal");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  absl::Status status;
  while (!watch.done && std::chrono::steady_clock::now() < deadline) {
    const int r = sd_bus_process(bus_, nullptr);
    if (r < 0) {
      status = absl::UnavailableError(absl::StrCat("connection lost: ", strerror(-r)));
      break;
    }
    if (r == 0) {
      const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
          deadline - std::chrono::steady_clock::now());
      sd_bus_wait(bus_, static_cast<std::uint64_t>(std::max<std::int64_t>(left.count(), 0)));
    }
  }
  sd_bus_slot_unref(slot);
  return status;
}

absl::Status ControlClient::Ping() {
  Message reply;
  return Call("Ping", 0, &reply.m, NoArgs);
}

}  // namespace sprocket
