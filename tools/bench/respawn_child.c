/* respawn_child PAYLOAD.so FIFO: what the minimal loop and supervisord start. It loads the payload
 * the way sprocket loads a unit (dlopen RTLD_NOW | RTLD_LOCAL), calls its run(), then waits to be
 * killed: SIGTERM's default action ends it. */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: respawn_child PAYLOAD.so FIFO\n");
    return 2;
  }
  /* Never outlive the respawner (one syscall; the benchmark must leave no orphans). */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) {
    return 1;
  }
  void* payload = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (payload == NULL) {
    fprintf(stderr, "respawn_child: %s\n", dlerror());
    return 3;
  }
  int (*run)(const char*) = (int (*)(const char*))dlsym(payload, "run");
  if (run == NULL) {
    fprintf(stderr, "respawn_child: %s\n", dlerror());
    return 3;
  }
  if (run(argv[2]) != 0) {
    perror("respawn_child: run");
    return 4;
  }
  for (;;) {
    pause();
  }
}
