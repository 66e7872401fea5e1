// File: server/mailboxes.h
//
// Messages for custom processes, owned by the master. Each running instance has a mailbox — a
// framed socket whose other end the process reads for OnPipeReadable — handed over by the
// manager when the instance starts. Send writes straight into it, so a message costs the
// caller one hop, not a detour through the manager.
//
// Nothing is lost: a message for an instance that is restarting or backing off waits here and
// is delivered, in order, when the next instance's mailbox arrives; the queue is bounded
// (max_queued_messages, counting messages not yet acknowledged) and overflow is an error to the
// sender. A process acknowledges messages after OnPipeReadable returns; those it had not
// acknowledged when it stopped or died go to its successor (at-least-once).
//
//   Mailboxes mailboxes(io, config.processes);
//   mailboxes.Attach("jobs", 0, pid, std::move(fd));       // the manager's "mailbox" event
//   nlohmann::json reply = mailboxes.Send({{"name", "jobs"}, {"index", 0}}, "hello");
//
// Limits: master process only, on its event loop.
#pragma once

#include <sys/types.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "process/frame_channel.h"
#include "process/process_config.h"
#include "process/unique_fd.h"

namespace sprocket {

class Mailboxes {
 public:
  Mailboxes(boost::asio::io_context& io, const std::vector<ProcessConfig>& processes);

  // {"code": 200 delivered | 202 queued | 404 | 429 queue full | 503, "result": {"pid",
  // "queued"}, "msg"}. `target` is {"name": N, "index": I}.
  nlohmann::json Send(const nlohmann::json& target, std::string message);

  // The instance NAME.INDEX (pid) is running; `fd` is its mailbox. Queued messages go now.
  void Attach(const std::string& name, int index, pid_t pid, UniqueFd fd);
  // The instance exited; `state` is the slot's next state ("failed": it will not run again).
  void OnExited(const std::string& name, int index, pid_t pid, const std::string& state);
  // The server is stopping: refuse new messages.
  void Close() { closing_ = true; }

 private:
  struct Box {
    const ProcessConfig* config = nullptr;
    std::string label;
    pid_t pid = 0;
    std::shared_ptr<FrameChannel> channel;
    // The process took SIGTERM: what comes now waits for its successor.
    bool stopping = false;
    bool failed = false;
    std::deque<std::string> inflight;  // written, not yet acknowledged
    std::deque<std::string> queue;     // waiting for the next instance
  };

  void OnFrame(Box& box, pid_t pid, Frame frame);
  void Detach(Box& box);

  boost::asio::io_context& io_;
  std::map<std::pair<std::string, int>, Box> boxes_;
  bool closing_ = false;
};

}  // namespace sprocket
