// File: process/supervisor.h
//
// The manager's slot table: one slot per process instance, each forked, watched through a pidfd
// on the manager's event loop, and respawned when it exits — at once after a hot restart, with
// exponential backoff when it keeps dying young (process/backoff.h). Every change is written to
// the pid registry.
//
//   std::unique_ptr<Supervisor> s = NewSupervisor(io, RealOs(), config.processes, registry);
//   s->Start([&] { ReportReady(); });
//   ...
//   s->Stop([&] { io.stop(); });
//
// Limits: manager process only; single-threaded (the manager's io_context thread).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "process/os.h"
#include "process/process_config.h"
#include "process/registry.h"

namespace sprocket {

class Supervisor {
 public:
  virtual ~Supervisor() = default;

  // Forks every slot. `on_settled` runs once, when each slot is running (its Run began) or has
  // settled in backoff/failed with a reason.
  virtual void Start(std::function<void()> on_settled) = 0;

  // Sends SIGTERM to every slot and SIGKILL to those still there after their max_exit_wait;
  // nothing is respawned any more. `on_stopped` runs once every slot has exited.
  virtual void Stop(std::function<void()> on_stopped) = 0;

  // The registry's view of every slot.
  virtual std::vector<SlotRecord> Snapshot() const = 0;
};

// `processes` must outlive the supervisor.
std::unique_ptr<Supervisor> NewSupervisor(boost::asio::io_context& io, Os& os,
                                          const std::vector<ProcessConfig>& processes,
                                          Registry& registry);

}  // namespace sprocket
