// File: systemd/notify.h
//
// The master's side of the service manager protocol (sd_notify): readiness, a status line,
// reload and stop notices, watchdog pings, the fd store, and sockets handed over by socket
// activation. Every call is a no-op returning false when not started by systemd
// (no $NOTIFY_SOCKET), so the same binary runs from a shell.
//
//   Notifier notifier;
//   notifier.Send("READY=1\nSTATUS=2 workers, 3 processes running");
//   if (auto period = notifier.WatchdogPeriod()) StartWatchdogTimer(*period / 2);
//
// Limits: master process only — NotifyAccess=main makes systemd ignore every other pid.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "process/unique_fd.h"

namespace sprocket {

class Notifier {
 public:
  // Whether systemd listens ($NOTIFY_SOCKET is set).
  bool enabled() const;
  // Sends newline-separated assignments ("READY=1\nSTATUS=..."). False if not delivered.
  bool Send(std::string_view state) const;
  // "RELOADING=1\nMONOTONIC_USEC=<now>", as Type=notify-reload expects.
  bool SendReloading() const;
  // Stores `fds` in systemd's fd store under `name` (FDSTORE=1, FDNAME=...): after a restart
  // they come back through TakeListenFds, so listen sockets outlive the master.
  bool StoreFds(const std::vector<int>& fds, std::string_view name) const;
  // The watchdog period when systemd asked for pings (WatchdogSec=) for this process.
  std::optional<std::chrono::microseconds> WatchdogPeriod() const;
};

// Sockets systemd passed (socket activation or the fd store), taken once: the environment that
// announced them is cleared so children never see it.
std::vector<UniqueFd> TakeListenFds();

}  // namespace sprocket
