#include "server/mailboxes.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sprocket {

using nlohmann::json;

namespace {

json Reply(int code, json result, std::string msg) {
  return {{"code", code}, {"result", std::move(result)}, {"msg", std::move(msg)}};
}

}  // namespace

Mailboxes::Mailboxes(boost::asio::io_context& io, const std::vector<ProcessConfig>& processes)
    : io_(io) {
  for (const ProcessConfig& config : processes) {
    for (int i = 0; i < config.count; ++i) {
      Box& box = boxes_[{config.name, i}];
      box.config = &config;
      box.label = absl::StrCat("process ", config.name, " ", i);
    }
  }
}

json Mailboxes::Send(const json& target, std::string message) {
  const std::string name = target.value("name", "");
  const int index = target.value("index", 0);
  auto it = boxes_.find({name, index});
  if (it == boxes_.end()) {
    return Reply(404, nullptr, absl::StrCat("no custom process ", name, ".", index));
  }
  Box& box = it->second;
  if (closing_ || box.failed) {
    return Reply(503, nullptr, absl::StrCat(box.label, " will not run again (",
                                            closing_ ? "the server is stopping" : "it gave up",
                                            "): message refused"));
  }
  const std::size_t held = box.queue.size() + box.inflight.size();
  if (held >= static_cast<std::size_t>(box.config->max_queued_messages)) {
    return Reply(429, nullptr, absl::StrCat("queue full: ", held, " message(s) wait for ",
                                            box.label, " (max_queued_messages)"));
  }
  if (box.channel && !box.stopping) {
    box.channel->Send(FrameType::kMessage, message);
    box.inflight.push_back(std::move(message));
    return Reply(200, {{"pid", box.pid}, {"queued", false}}, "delivered");
  }
  box.queue.push_back(std::move(message));
  return Reply(202, {{"pid", 0}, {"queued", true}},
               absl::StrCat("queued: ", box.label, " is not running; delivered when it runs again"));
}

void Mailboxes::Attach(const std::string& name, int index, pid_t pid, UniqueFd fd) {
  auto it = boxes_.find({name, index});
  if (it == boxes_.end() || !fd) {
    return;
  }
  Box& box = it->second;
  Detach(box);
  box.pid = pid;
  box.failed = false;
  box.stopping = false;
  box.channel = FrameChannel::Create(io_, std::move(fd));
  box.channel->Start([this, &box, pid](Frame frame) { OnFrame(box, pid, std::move(frame)); },
                     [this, &box, pid](const absl::Status&) {
                       if (box.pid == pid) {
                         Detach(box);
                       }
                     });
  while (!box.queue.empty()) {
    box.channel->Send(FrameType::kMessage, box.queue.front());
    box.inflight.push_back(std::move(box.queue.front()));
    box.queue.pop_front();
  }
}

void Mailboxes::OnFrame(Box& box, pid_t pid, Frame frame) {
  if (box.pid != pid) {
    return;
  }
  if (frame.type == FrameType::kStopping) {
    box.stopping = true;
  } else if (frame.type == FrameType::kAck) {
    std::size_t n = 0;
    (void)absl::SimpleAtoi(frame.payload, &n);
    n = std::min(n, box.inflight.size());
    box.inflight.erase(box.inflight.begin(), box.inflight.begin() + n);
  }
}

void Mailboxes::OnExited(const std::string& name, int index, pid_t pid,
                         const std::string& state) {
  auto it = boxes_.find({name, index});
  if (it == boxes_.end()) {
    return;
  }
  Box& box = it->second;
  if (box.pid == pid) {
    Detach(box);
  }
  box.failed = state == "failed";
}

// Unacknowledged messages go back to the front of the queue, in their order, for the next
// instance.
void Mailboxes::Detach(Box& box) {
  if (box.channel) {
    box.channel->DrainNow();  // acknowledgements written just before the end
    box.channel->Close();
    box.channel.reset();
  }
  box.queue.insert(box.queue.begin(), std::make_move_iterator(box.inflight.begin()),
                   std::make_move_iterator(box.inflight.end()));
  box.inflight.clear();
  box.stopping = false;
}

}  // namespace sprocket
