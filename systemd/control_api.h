// File: systemd/control_api.h
//
// sprocket's control API on D-Bus (sd-bus), served by the master:
//
//   object /org/sprocket/Server, interface org.sprocket.Server1
//     ListProcesses() -> a(sssiusttusst)   kind, name, group, index, pid, state, start_time
//                                          (ticks since boot), uptime_ms, restarts, last_exit,
//                                          reason, rss_bytes
//     Restart(s target) -> a(ssiu)         target: "PID", "NAME", "NAME.INDEX" or "group:G";
//                                          returns kind, name, index, old pid of each
//     Reload()                             returns when the rolling reload is done; fails with
//                                          org.sprocket.Error.ReloadFailed and the reason
//     Send(s target, ay message) -> (su)   "delivered" or "queued", and the pid
//     Status() -> s                        the one-line summary systemd shows
//     Stop()                               stops the server (after replying)
//     Ping()                               does nothing: the floor for benchmarks
//     signal ProcessStarted(s kind, s name, i index, u pid)
//     signal ProcessExited(s kind, s name, i index, u pid, s last_exit)
//     signal ReloadFinished(b ok, s reason)
//
// Errors: org.freedesktop.DBus.Error.AccessDenied (a foreign pid, or a non-root caller of a
// method that changes things), org.freedesktop.DBus.Error.InvalidArgs,
// org.sprocket.Error.NotFound, org.sprocket.Error.QueueFull, org.sprocket.Error.Unavailable.
//
// It is reachable on a private socket, RUN_DIR/control.sock (mode 0600), always — a
// peer-to-peer D-Bus link that also answers Hello, so `busctl --address=unix:path=...` works —
// and on the system bus as org.sprocket.Server1 when there is one.
//
// Limits: master process only, on its event loop.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace sprocket {

inline constexpr char kBusName[] = "org.sprocket.Server1";
inline constexpr char kObjectPath[] = "/org/sprocket/Server";
inline constexpr char kInterface[] = "org.sprocket.Server1";
inline constexpr char kControlSocket[] = "control.sock";

// What the API asks of the master.
class ControlBackend {
 public:
  virtual ~ControlBackend() = default;
  // A control request for the manager ({"op": "list" | "restart" | "send" | "reload", ...});
  // `done` gets {"code", "result", "msg"}.
  virtual void Call(nlohmann::json request, std::function<void(nlohmann::json)> done) = 0;
  virtual std::string StatusLine() const = 0;
  virtual void RequestStop() = 0;
};

class ControlApi {
 public:
  // Serves on `socket_path` (replacing a stale socket file), and on the system bus too when
  // `system_bus` is set and a system bus answers (its absence is not an error).
  static absl::StatusOr<std::unique_ptr<ControlApi>> Start(boost::asio::io_context& io,
                                                           ControlBackend& backend,
                                                           const std::string& socket_path,
                                                           bool system_bus);
  virtual ~ControlApi() = default;

  // Emits ProcessStarted / ProcessExited for a manager event {"event": "started" | "exited"...}.
  virtual void EmitProcessEvent(const nlohmann::json& event) = 0;
  virtual void EmitReloadFinished(bool ok, const std::string& reason) = 0;
  virtual bool on_system_bus() const = 0;
};

// "1234" -> {"pid": 1234}; "group:G" -> {"group": "G"}; "NAME.2" -> {"name": "NAME",
// "index": 2}; "NAME" -> {"name": "NAME"}.
nlohmann::json ParseTarget(std::string_view target);

}  // namespace sprocket
