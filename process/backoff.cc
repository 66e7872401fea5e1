#include "process/backoff.h"

#include <algorithm>

namespace sprocket {

RespawnDecision DecideRespawn(const RestartPolicy& policy, BackoffState& state,
                              std::chrono::milliseconds uptime, bool deliberate_clean_exit) {
  if (uptime >= policy.stable_after) {
    state.young_failures = 0;
  }
  if (deliberate_clean_exit || uptime >= policy.stable_after) {
    return {};
  }
  ++state.young_failures;
  if (policy.give_up_after > 0 && state.young_failures >= policy.give_up_after) {
    return {.give_up = true};
  }
  // Doubling stops at the cap long before the shift could overflow.
  std::chrono::milliseconds delay = policy.backoff_start;
  for (int i = 1; i < state.young_failures && delay < policy.backoff_max; ++i) {
    delay *= 2;
  }
  return {.delay = std::min(delay, policy.backoff_max)};
}

}  // namespace sprocket
