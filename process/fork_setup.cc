#include "process/fork_setup.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace sprocket {

sigset_t LoopSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) {
    sigaddset(&set, sig);
  }
  return set;
}

void IgnoreSigpipe() { ::signal(SIGPIPE, SIG_IGN); }

void ArmExitDeadline(std::chrono::milliseconds wait) {
  const auto ms = wait.count();
  itimerval deadline{};
  deadline.it_value.tv_sec = ms / 1000;
  deadline.it_value.tv_usec = (ms % 1000) * 1000;
  ::setitimer(ITIMER_REAL, &deadline, nullptr);
}

void BlockLoopSignals() {
  const sigset_t set = LoopSignals();
  sigprocmask(SIG_BLOCK, &set, nullptr);
}

namespace {

void CloseAllBut(std::span<const int> keep) {
  std::vector<int> sorted(keep.begin(), keep.end());
  std::sort(sorted.begin(), sorted.end());
  unsigned int next = 3;
  for (int fd : sorted) {
    if (fd < static_cast<int>(next)) {
      continue;
    }
    if (static_cast<unsigned int>(fd) > next) {
      ::close_range(next, static_cast<unsigned int>(fd) - 1, 0);
    }
    next = static_cast<unsigned int>(fd) + 1;
  }
  ::close_range(next, ~0U, 0);
}

}  // namespace

void PrepareForkedChild(pid_t parent, std::span<const int> keep) {
  // "We should never exist without our parent": if it died before prctl, getppid() has changed.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) {
    ::_exit(1);
  }
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) {
      ::signal(sig, SIG_DFL);
    }
  }
  IgnoreSigpipe();
  const sigset_t loop = LoopSignals();
  ::sigprocmask(SIG_SETMASK, &loop, nullptr);
  CloseAllBut(keep);
}

}  // namespace sprocket
