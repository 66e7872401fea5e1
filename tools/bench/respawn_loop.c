/* respawn_loop CHILD PAYLOAD.so FIFO: the benchmark's floor for a respawner that execs. Forks,
 * execv's CHILD, waits for it, and does it again, forever; SIGTERM to the loop itself passes
 * SIGTERM to the current child and ends the loop when that child is gone. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping = 0;
static volatile pid_t current = 0;

static void OnSigterm(int sig) {
  (void)sig;
  stopping = 1;
  if (current > 0) {
    kill(current, SIGTERM);
  }
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: respawn_loop CHILD PAYLOAD.so FIFO\n");
    return 2;
  }
  struct sigaction term = {0};
  term.sa_handler = OnSigterm;
  sigemptyset(&term.sa_mask);
  sigaction(SIGTERM, &term, NULL);
  while (!stopping) {
    const pid_t pid = fork();
    if (pid == 0) {
      execv(argv[1], argv + 1);
      _exit(127);
    }
    if (pid < 0) {
      perror("respawn_loop: fork");
      const struct timespec pause_10ms = {0, 10 * 1000 * 1000};
      nanosleep(&pause_10ms, NULL);
      continue;
    }
    current = pid;
    if (stopping) {
      kill(pid, SIGTERM); /* SIGTERM arrived between fork and `current = pid` */
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    current = 0;
  }
  return 0;
}
