// File: process/fork_setup.h
//
// What every forked sprocket process (manager, worker, custom process) does first, before it
// builds its own event loop: tie its life to its parent's, drop every fd it does not own, and
// start from a clean signal state. The parent is single-threaded and holds no locks when it
// forks, so this runs ordinary code; nothing the parent's event loop owns is touched.
//
// Limits: call once, right after fork, in the child only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <span>
#include <string_view>

namespace sprocket {

// The signals sprocket processes read through a signalfd (blocked, never handled).
sigset_t LoopSignals();

// Blocks LoopSignals() in the calling thread; done first thing in main(), before any fork.
void BlockLoopSignals();

// Every sprocket process writes to sockets whose peer may be gone (a child that just died, a
// client that hung up): that must be an EPIPE error to handle, not a signal that kills.
void IgnoreSigpipe();

// Ends this process by SIGALRM's default action after `wait`, whatever it is doing then: the
// bound on user code (OnShutdown) or a drain that cannot finish.
void ArmExitDeadline(std::chrono::milliseconds wait);

// In a freshly forked child: dies with SIGKILL when `parent` dies (and exits at once if it
// already has), resets signal dispositions (LoopSignals() stay blocked for the child's own
// signalfd; everything else unblocked; SIGPIPE ignored), and closes every fd but 0-2 and
// `keep`.
void PrepareForkedChild(pid_t parent, std::span<const int> keep);

}  // namespace sprocket
