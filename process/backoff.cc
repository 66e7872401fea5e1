#include "process/backoff.h"

#include <algorithm>
#include <limits>

namespace sprocket {

RespawnDecision DecideRespawn(const RestartPolicy& policy, BackoffState& state,
                              std::chrono::milliseconds uptime, bool deliberate_clean_exit) {
  if (uptime >= policy.stable_after) {
    state.young_failures = 0;
  }
  if (deliberate_clean_exit || uptime >= policy.stable_after) {
    return {};
  }
  if (state.young_failures < std::numeric_limits<int>::max()) {
    ++state.young_failures;
  }
  if (policy.give_up_after > 0 && state.young_failures >= policy.give_up_after) {
    return {.give_up = true};
  }
  // Doubling saturates at the cap; comparing against half the cap keeps any cap from overflowing.
  std::chrono::milliseconds delay = policy.backoff_start;
  for (int i = 1; i < state.young_failures && delay < policy.backoff_max; ++i) {
    delay = delay > policy.backoff_max / 2 ? policy.backoff_max : delay * 2;
  }
  return {.delay = std::min(delay, policy.backoff_max)};
}

}  // namespace sprocket
