// File: process/backoff.h
//
// The manager's respawn decision, kept apart from the code that forks so it can be tested
// directly. A deliberate clean exit (the process acknowledged SIGTERM and exited 0: a hot
// restart) respawns at once. A process that dies young (before `stable_after`) is in a crash
// loop: each consecutive young death doubles the delay from backoff_start up to backoff_max, and
// after give_up_after of them the slot gives up. A death after a stable run respawns at once and
// starts the count afresh.
//
//   RespawnDecision d = DecideRespawn(policy, slot.backoff, uptime, deliberate);
//   if (d.give_up) MarkFailed(); else ScheduleSpawn(d.delay);
#pragma once

#include <chrono>

#include "process/process_config.h"

namespace sprocket {

struct BackoffState {
  // Consecutive deaths before stable_after.
  int young_failures = 0;
};

struct RespawnDecision {
  bool give_up = false;
  std::chrono::milliseconds delay{0};
};

RespawnDecision DecideRespawn(const RestartPolicy& policy, BackoffState& state,
                              std::chrono::milliseconds uptime, bool deliberate_clean_exit);

}  // namespace sprocket
