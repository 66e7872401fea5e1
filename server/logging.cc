#define GLOG_CUSTOM_PREFIX_SUPPORT
#include "server/logging.h"

#include <unistd.h>

#include <cstdlib>
#include <iomanip>
#include <ostream>

#include <glog/logging.h>

#include "process/process_title.h"

namespace sprocket {
namespace {

bool g_journal = false;

int SyslogPriority(const char* severity) {
  switch (severity[0]) {
    case 'W':
      return 4;
    case 'E':
      return 3;
    case 'F':
      return 2;
    default:
      return 6;
  }
}

// Runs for every log line, in whichever process writes it.
void Prefix(std::ostream& s, const google::LogMessageInfo& l, void*) {
  if (g_journal) {
    // journald adds the time and the pid itself.
    s << '<' << SyslogPriority(l.severity) << '>' << CurrentProcessTitle() << ": " << l.filename
      << ':' << l.line_number << ']';
    return;
  }
  s << l.severity[0] << std::setfill('0') << std::setw(2) << 1 + l.time.month() << std::setw(2)
    << l.time.day() << ' ' << std::setw(2) << l.time.hour() << ':' << std::setw(2) << l.time.min()
    << ':' << std::setw(2) << l.time.sec() << '.' << std::setw(6) << l.time.usec() << ' '
    << std::setfill(' ') << ::getpid() << ' ' << CurrentProcessTitle() << ": " << l.filename
    << ':' << l.line_number << ']';
}

}  // namespace

void InitLogging(const std::string& argv0, int verbosity) {
  const char* journal = std::getenv("JOURNAL_STREAM");
  g_journal = journal != nullptr && *journal != 0;
  FLAGS_logtostderr = true;
  FLAGS_v = verbosity;
  google::InitGoogleLogging(argv0.c_str(), &Prefix, nullptr);
}

}  // namespace sprocket
