// File: systemd/control_client.h
//
// A client of the control API (systemd/control_api.h), for sprocketctl, tests and benchmarks:
// blocking calls over the private socket or the system bus, errors as absl::Status with the
// server's own message (PermissionDenied, NotFound, ResourceExhausted for a full queue,
// FailedPrecondition for a failed reload, Unavailable when the server is not running).
//
//   absl::StatusOr<std::unique_ptr<ControlClient>> c =
//       ControlClient::ConnectPrivate("/run/sprocket/control.sock");
//   absl::StatusOr<std::vector<ProcessRow>> rows = (*c)->ListProcesses();
//
// Limits: one thread at a time per client.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sd_bus;
struct sd_bus_message;

namespace sprocket {

struct ProcessRow {
  std::string kind, name, group;
  int index = 0;
  std::uint32_t pid = 0;
  std::string state;
  std::uint64_t start_time = 0, uptime_ms = 0;
  std::uint32_t restarts = 0;
  std::string last_exit, reason;
  std::uint64_t rss_bytes = 0;
};

struct RestartedRow {
  std::string kind, name;
  int index = 0;
  std::uint32_t pid = 0;
};

class ControlClient {
 public:
  static absl::StatusOr<std::unique_ptr<ControlClient>> ConnectPrivate(const std::string& socket);
  static absl::StatusOr<std::unique_ptr<ControlClient>> ConnectSystemBus();
  ~ControlClient();

  absl::StatusOr<std::vector<ProcessRow>> ListProcesses();
  absl::StatusOr<std::vector<RestartedRow>> Restart(const std::string& target);
  absl::Status Reload();
  // Returns "delivered" or "queued", and the pid it went to (0 when queued).
  absl::StatusOr<std::pair<std::string, std::uint32_t>> Send(const std::string& target,
                                                             const std::string& message);
  absl::StatusOr<std::string> Status();
  absl::Status Stop();
  absl::Status Ping();

  // Receives the API's signals for up to `timeout`: `on_signal` gets the member name and the
  // arguments as text ("process ver 0 1234"); returning true stops the wait early.
  absl::Status WatchSignals(
      std::chrono::milliseconds timeout,
      const std::function<bool(const std::string& member, const std::string& args)>& on_signal);

 private:
  ControlClient(sd_bus* bus, const char* destination) : bus_(bus), destination_(destination) {}
  absl::Status Call(const char* member, std::uint64_t timeout_usec, sd_bus_message** reply,
                    const std::function<int(sd_bus_message*)>& append);
  sd_bus* bus_;
  const char* destination_;  // nullptr on the peer-to-peer socket
};

}  // namespace sprocket
