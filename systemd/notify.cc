#include "systemd/notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>

namespace sprocket {

bool Notifier::enabled() const {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  return socket != nullptr && *socket != 0;
}

bool Notifier::Send(std::string_view state) const {
  if (!enabled()) {
    return false;
  }
  const std::string s(state);
  return sd_notify(/*unset_environment=*/0, s.c_str()) > 0;
}

bool Notifier::SendReloading() const {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const unsigned long long usec =
      static_cast<unsigned long long>(now.tv_sec) * 1000000ull + now.tv_nsec / 1000;
  return Send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

bool Notifier::StoreFds(const std::vector<int>& fds, std::string_view name) const {
  if (!enabled() || fds.empty()) {
    return false;
  }
  const std::string state = "FDSTORE=1\nFDNAME=" + std::string(name);
  return sd_pid_notify_with_fds(0, 0, state.c_str(), fds.data(), static_cast<unsigned>(fds.size())) > 0;
}

std::optional<std::chrono::microseconds> Notifier::WatchdogPeriod() const {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(/*unset_environment=*/0, &usec) <= 0 || usec == 0) {
    return std::nullopt;
  }
  return std::chrono::microseconds(usec);
}

std::vector<UniqueFd> TakeListenFds() {
  std::vector<UniqueFd> fds;
  const int n = sd_listen_fds(/*unset_environment=*/1);
  for (int i = 0; i < n; ++i) {
    fds.emplace_back(SD_LISTEN_FDS_START + i);
  }
  return fds;
}

}  // namespace sprocket
