/* The payload the minimal loop's and supervisord's child dlopens (tools/bench/respawn_child.c):
 * run() reports "PID MONOTONIC_NS\n" to the FIFO, exactly as the sprocket bench unit's Run(). */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

__attribute__((visibility("default"))) int run(const char* fifo) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  char line[64];
  const int len = snprintf(line, sizeof(line), "%d %lld\n", (int)getpid(),
                           (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
  const int fd = open(fifo, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return -1;
  }
  const ssize_t written = write(fd, line, (size_t)len);
  close(fd);
  return written == len ? 0 : -1;
}
