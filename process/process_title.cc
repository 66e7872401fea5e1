#include "process/process_title.h"

#include <sys/prctl.h>

#include <algorithm>
#include <cstring>

extern char** environ;

namespace sprocket {
namespace {

char* g_area = nullptr;
std::size_t g_area_size = 0;
// A copy of the title, readable by the log prefix in every process (the argv area may be
// shorter than the title).
char g_title[128] = "sprocket";

// The argv and environ strings sit back to back; the title may use all of them that are
// contiguous with argv[0].
std::size_t ContiguousSpan(char* start, int argc, char** argv) {
  char* end = start;
  for (int i = 0; i < argc; ++i) {
    if (argv[i] == end || i == 0) {
      end = argv[i] + std::strlen(argv[i]) + 1;
    }
  }
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (*e == end) {
      end = *e + std::strlen(*e) + 1;
    }
  }
  return static_cast<std::size_t>(end - start);
}

void MoveEnvironmentToHeap() {
  std::size_t n = 0;
  while (environ != nullptr && environ[n] != nullptr) {
    ++n;
  }
  // Leaked on purpose: environ must stay valid for the life of the process.
  char** copy = new char*[n + 1];
  for (std::size_t i = 0; i < n; ++i) {
    copy[i] = strdup(environ[i]);
  }
  copy[n] = nullptr;
  environ = copy;
}

}  // namespace

std::vector<std::string> InitProcessTitle(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  if (argc > 0 && argv[0] != nullptr) {
    g_area = argv[0];
    g_area_size = ContiguousSpan(argv[0], argc, argv);
    MoveEnvironmentToHeap();
    // argv[1..] must not point into the area any more: anyone reading them sees empty strings.
    for (int i = 1; i < argc; ++i) {
      argv[i] = g_area + g_area_size - 1;
    }
  }
  return args;
}

void SetProcessTitle(std::string_view title) {
  if (g_area != nullptr && g_area_size > 1) {
    const std::size_t n = std::min(title.size(), g_area_size - 1);
    std::memcpy(g_area, title.data(), n);
    std::memset(g_area + n, 0, g_area_size - n);
  }
  const std::string comm(title.substr(0, 15));
  ::prctl(PR_SET_NAME, comm.c_str());
  const std::size_t n = std::min(title.size(), sizeof(g_title) - 1);
  std::memcpy(g_title, title.data(), n);
  g_title[n] = '\0';
}

const char* CurrentProcessTitle() { return g_title; }

}  // namespace sprocket
