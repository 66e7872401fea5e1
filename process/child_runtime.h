// File: process/child_runtime.h
//
// The life of one custom-process instance, from just after fork to exit: load the unit, build
// the class, report ready to the manager, Run(arg), serve timers and pipe messages on the child's
// own event loop, and on SIGTERM run OnShutdown (bounded by max_exit_wait) and exit 0.
//
//   // in the manager, after fork, in the child:
//   RunProcessChild(manager_pid, config, index, std::move(channel));  // never returns
//
// Limits: runs only in a freshly forked child of the manager.
#pragma once

#include <sys/types.h>

#include "process/process_config.h"
#include "process/unique_fd.h"

namespace sprocket {

// Never returns: the child _exits with 0 after a clean stop, or a code from process/exit_codes.h.
// With `held`, the child loads the unit and then waits for the manager's kStart before it builds
// the instance and calls Run: the manager forks a successor as soon as the old instance
// acknowledges SIGTERM, so fork, setup and dlopen are off a hot restart's critical path, while
// no user code of the successor runs before the old instance is gone.
// `channel` is the framed socket to the manager (lifecycle); `mailbox` the one the master writes
// messages to (process/channel.h).
[[noreturn]] void RunProcessChild(pid_t manager, const ProcessConfig& config, int index,
                                  UniqueFd channel, UniqueFd mailbox, bool held = false);

}  // namespace sprocket
