// File: process/supervisor.h
//
// The manager's slot table. A slot is one custom-process instance or one HTTP worker; each is
// forked, watched through a pidfd on the manager's event loop, and respawned when it exits — at
// once after a hot restart, with exponential backoff when it keeps dying young
// (process/backoff.h). Every change is written to the pid registry. The supervisor also runs
// rolling reloads and answers control requests (list, restart, send, reload) from the master and
// from workers, so every signal to a slot is decided here, against the live table.
//
//   SupervisorOptions options{config.processes, config.http, listen_fds, RunWorker};
//   std::unique_ptr<Supervisor> s = NewSupervisor(io, RealOs(), options, registry);
//   s->Start([&] { ReportReady(); });
//   s->Reload([](absl::Status result) { ... });
//   s->Stop([&] { io.stop(); });
//
// Limits: manager process only; single-threaded (the manager's io_context thread).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "process/os.h"
#include "process/process_config.h"
#include "process/registry.h"
#include "process/unique_fd.h"

namespace sprocket {

// What a forked worker runs (the HTTP worker runtime); never returns. `channel` is its framed
// socket to the manager.
using WorkerMain = std::function<void(pid_t manager, int index, UniqueFd channel)>;

struct SupervisorOptions {
  const std::vector<ProcessConfig>& processes;
  const HttpConfig& http;
  // How many workers run: http.workers, or 0 when there are no controller units.
  int workers = 0;
  WorkerMain worker_main;
  // Lifecycle events for the control API's signals: {"event": "started", "kind", "name",
  // "index", "pid"} once a slot's process is running, {"event": "exited", ..., "last_exit",
  // "state"} with the slot's next state.
  std::function<void(nlohmann::json)> on_event;
  // A custom process is running: the master gets the other end of its mailbox, through which
  // it delivers messages (the manager keeps no copy).
  std::function<void(const std::string& name, int index, pid_t pid, UniqueFd mailbox)> on_mailbox;
  // Requests that are the master's to answer ("send", from a worker's controller).
  std::function<void(nlohmann::json request, std::function<void(nlohmann::json)> reply)>
      call_master;
};

class Supervisor {
 public:
  virtual ~Supervisor() = default;

  // Forks every slot. `on_settled` runs once, when each slot is running (its Run began, or the
  // worker accepts) or has settled in backoff/failed with a reason.
  virtual void Start(std::function<void()> on_settled) = 0;

  // Rolling reload: each worker is replaced by a new one that loaded the controller units now
  // on disk — the replacement must be ready before the old one is told to drain — then every
  // process registered with reload = true is restarted, one instance at a time. If a
  // replacement cannot start, the old worker keeps serving and `done` gets the reason. One
  // reload runs at a time; those asked for meanwhile share the next run.
  virtual void Reload(std::function<void(absl::Status)> done) = 0;

  // Answers a control request {"op": "list" | "restart" | "reload" | "ping", ...} with
  // {"code": HTTP-like status, "result": ..., "msg": "..."} (see controllers/controller.h);
  // "send" goes to the master, which owns the messages (server/mailboxes.h).
  virtual void HandleRequest(const nlohmann::json& request,
                             std::function<void(nlohmann::json)> reply) = 0;

  // Sends SIGTERM to every slot and SIGKILL to those still there after their max_exit_wait;
  // nothing is respawned any more. `on_stopped` runs once every slot has exited.
  virtual void Stop(std::function<void()> on_stopped) = 0;

  // The registry's view of every slot.
  virtual std::vector<SlotRecord> Snapshot() const = 0;
};

// `options.processes` and `options.http` must outlive the supervisor.
std::unique_ptr<Supervisor> NewSupervisor(boost::asio::io_context& io, Os& os,
                                          SupervisorOptions options, Registry& registry);

}  // namespace sprocket
