// File: server/logging.h
//
// glog set up for a process tree: every line is tagged with the writing process's title
// ("sprocket: worker 0"), and under journald ($JOURNAL_STREAM) starts with a syslog priority
// prefix (<6> info, <4> warning, <3> error, <2> fatal) so `journalctl -p warning` filters it.
// Logs go to stderr — systemd's journal captures it — never to glog's files.
//
//   InitLogging(argv[0], /*verbosity=*/0);   // in the master, before any fork
//
// Limits: once per process tree; forked children inherit it.
#pragma once

#include <string>

namespace sprocket {

void InitLogging(const std::string& argv0, int verbosity);

}  // namespace sprocket
