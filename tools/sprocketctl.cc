// sprocketctl: the operator's command line for a running sprocket server, over its control API
// (systemd/control_api.h) — EasySwoole's `process show|kill` and supervisorctl, the systemd way.
//
//   sprocketctl [--run_dir=DIR | --bus] ps [--json]
//   sprocketctl restart TARGET          TARGET: PID, NAME, NAME.INDEX or group:GROUP
//   sprocketctl reload                  waits; exit status says whether it worked
//   sprocketctl send TARGET MESSAGE     TARGET: NAME or NAME.INDEX
//   sprocketctl status                  the one line systemd shows
//   sprocketctl stop
//
// Errors are one line on stderr and a non-zero exit: 1 for a failed command, 2 for bad usage.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "process/registry.h"
#include "systemd/control_api.h"
#include "systemd/control_client.h"

ABSL_FLAG(std::string, run_dir, "",
          "the server's runtime dir (default: $RUNTIME_DIRECTORY, /run/sprocket as root, else "
          "$XDG_RUNTIME_DIR/sprocket or /tmp/sprocket-UID)");
ABSL_FLAG(bool, bus, false, "talk to org.sprocket.Server1 on the system bus instead");
ABSL_FLAG(bool, json, false, "ps: print JSON for scripts");

namespace sprocket {
namespace {

constexpr char kUsage[] =
    "usage: sprocketctl [--run_dir=DIR | --bus] ps [--json] | restart TARGET | reload | "
    "send TARGET MESSAGE | status | stop";

std::string Uptime(std::uint64_t ms) {
  const std::uint64_t s = ms / 1000;
  if (s < 60) {
    return absl::StrCat(s, "s");
  }
  if (s < 3600) {
    return absl::StrCat(s / 60, "m", s % 60, "s");
  }
  if (s < 86400) {
    return absl::StrCat(s / 3600, "h", s % 3600 / 60, "m");
  }
  return absl::StrCat(s / 86400, "d", s % 86400 / 3600, "h");
}

std::string Memory(std::uint64_t bytes) {
  if (bytes == 0) {
    return "-";
  }
  return bytes >= (1 << 30) ? absl::StrFormat("%.1fG", bytes / double(1 << 30))
                            : absl::StrFormat("%.1fM", bytes / double(1 << 20));
}

nlohmann::json RowJson(const ProcessRow& r) {
  return {{"kind", r.kind},           {"name", r.name},           {"group", r.group},
          {"index", r.index},         {"pid", r.pid},             {"state", r.state},
          {"start_time", r.start_time}, {"uptime_ms", r.uptime_ms}, {"restarts", r.restarts},
          {"last_exit", r.last_exit}, {"reason", r.reason},       {"rss_bytes", r.rss_bytes}};
}

int Ps(ControlClient& client) {
  absl::StatusOr<std::vector<ProcessRow>> rows = client.ListProcesses();
  if (!rows.ok()) {
    std::cerr << "sprocketctl: " << rows.status().message() << "\n";
    return 1;
  }
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json out = nlohmann::json::array();
    for (const ProcessRow& r : *rows) {
      out.push_back(RowJson(r));
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%-8s %-20s %5s %8s %-9s %8s %8s %8s  %s\n", "KIND", "NAME", "INDEX", "PID", "STATE",
              "UPTIME", "RESTARTS", "MEMORY", "LAST EXIT");
  for (const ProcessRow& r : *rows) {
    std::string last = r.last_exit.empty() ? "-" : r.last_exit;
    if (!r.reason.empty() && r.state != "running") {
      last += " (" + r.reason + ")";
    }
    std::printf("%-8s %-20s %5d %8s %-9s %8s %8u %8s  %s\n", r.kind.c_str(), r.name.c_str(),
                r.index, r.pid ? std::to_string(r.pid).c_str() : "-", r.state.c_str(),
                r.pid ? Uptime(r.uptime_ms).c_str() : "-", r.restarts,
                Memory(r.rss_bytes).c_str(), last.c_str());
  }
  return 0;
}

int Report(const absl::Status& status, const std::string& ok_line) {
  if (!status.ok()) {
    std::cerr << "sprocketctl: " << status.message() << "\n";
    return 1;
  }
  if (!ok_line.empty()) {
    std::cout << ok_line << "\n";
  }
  return 0;
}

int Restart(ControlClient& client, const std::string& target) {
  absl::StatusOr<std::vector<RestartedRow>> rows = client.Restart(target);
  if (!rows.ok()) {
    return Report(rows.status(), "");
  }
  for (const RestartedRow& r : *rows) {
    std::cout << "restarting " << r.kind << " " << r.name << " " << r.index
              << (r.pid ? absl::StrCat(" (pid ", r.pid, ")") : std::string()) << "\n";
  }
  return 0;
}

int Send(ControlClient& client, const std::string& target, const std::string& message) {
  absl::StatusOr<std::pair<std::string, std::uint32_t>> sent = client.Send(target, message);
  if (!sent.ok()) {
    return Report(sent.status(), "");
  }
  std::cout << sent->first
            << (sent->second ? absl::StrCat(" to pid ", sent->second) : std::string()) << "\n";
  return 0;
}

absl::StatusOr<std::unique_ptr<ControlClient>> Connect() {
  if (absl::GetFlag(FLAGS_bus)) {
    return ControlClient::ConnectSystemBus();
  }
  std::string dir = absl::GetFlag(FLAGS_run_dir);
  if (dir.empty()) {
    dir = DefaultRunDir();
  }
  return ControlClient::ConnectPrivate(absl::StrCat(dir, "/", kControlSocket));
}

int Dispatch(ControlClient& client, const std::vector<std::string>& args) {
  const std::string& cmd = args[0];
  if (cmd == "ps" && args.size() == 1) {
    return Ps(client);
  }
  if (cmd == "restart" && args.size() == 2) {
    return Restart(client, args[1]);
  }
  if (cmd == "reload" && args.size() == 1) {
    return Report(client.Reload(), "reload finished");
  }
  if (cmd == "send" && args.size() == 3) {
    return Send(client, args[1], args[2]);
  }
  if (cmd == "status" && args.size() == 1) {
    absl::StatusOr<std::string> line = client.Status();
    return Report(line.status(), line.ok() ? *line : "");
  }
  if (cmd == "stop" && args.size() == 1) {
    return Report(client.Stop(), "stopping");
  }
  std::cerr << kUsage << "\n";
  return 2;
}

}  // namespace
}  // namespace sprocket

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(sprocket::kUsage);
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() < 2) {
    std::cerr << sprocket::kUsage << "\n";
    return 2;
  }
  std::vector<std::string> args(rest.begin() + 1, rest.end());
  absl::StatusOr<std::unique_ptr<sprocket::ControlClient>> client = sprocket::Connect();
  if (!client.ok()) {
    std::cerr << "sprocketctl: " << client.status().message() << "\n";
    return 1;
  }
  return sprocket::Dispatch(**client, args);
}
